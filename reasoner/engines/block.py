"""Set-at-a-time: a block of cases decided a few stores at a time (issue 9 point 3).

The compiled engine (reasoner/engines/compiled_run.py) runs a pack's `Program` per case: the
inference rules, each SHACL-SPARQL constraint once per focus node, each trace query once. Over a
block of a few hundred cases that is tens of thousands of small queries. Here the block's
per-case graphs are loaded `STORE_CASES` to a store, one named graph per case, and:

* each SPARQL constraint and each trace query that can be scoped safely runs ONCE per store: its WHERE group becomes `GRAPH ?g { VALUES (?g ?this) { (case graph, focus
  node) ... } <the original group> }`, `?g` is added to the projection, and the solutions are
  split per case graph and focus node. SHACL pre-binding (SHACL 1.1 section 5.3.1) substitutes
  `$this` everywhere in the query; a variable bound by a VALUES block at the top of the group is
  the same where `$this` occurs at that top level, inside a top-level `FILTER [NOT] EXISTS`
  (whose pattern is evaluated with the outer solution substituted, SPARQL 1.1 section 8.1),
  or in a nested group (a UNION branch, an OPTIONAL) that binds it by a triple pattern before
  any expression (FILTER, BIND) of that group uses it: the group's solutions then all carry
  `$this` and the join with the VALUES keeps exactly the focus node's (an OPTIONAL group only
  where its parent group binds `$this` too). So a query is scoped
  set-at-a-time only when every `$this` sits so, it has no
  subquery, no solution modifiers (GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET) or aggregates,
  and its focus nodes are IRIs or literals (a blank node cannot be written in a query). Every
  other query runs per case and focus node, exactly as the per-case engine runs it, on that
  case's named graph (`default_graph`);
* the inference rules run per case, on that case's named graph (a rule's CONSTRUCT output
  order decides the order the case's inferred triples are indexed in, which the facts and the
  JSON follow; a rule scoped over the block would not keep that order). This is the part that
  stays one query per case and rule.

Everything after the queries (verdicts, facts, citations, the summary, partial dates) is the
per-case code itself: the block's results are handed to `Reasoner.determine` in place of the
per-case validation (`Determiner.validate`), so a block gives the same determinations, byte for
byte, as one case at a time; tests/test_batch_block.py checks that on every case of cases/.
A case that cannot be loaded or fails the case guard is decided on its own (the same error as
one at a time); a pack the compiled engine does not run (`Program.fallback`) is not decided
set-at-a-time at all (`runner_for` gives None).
"""

from __future__ import annotations

import time

from pyoxigraph import BlankNode, NamedNode, Quad, Store, Variable

from ..errors import KnowledgeError
from .compiled import Program
from .compiled_data import CaseIndex
from .compiled_run import _text, add_inferred, bind_this, solution_results
from .block_scope import _G, scoped, scoped_rule
from .shacl import ShapesReport

_THIS = Variable("this")

class _Plan:
    """A Program's queries, each with its block form (or None: per case)."""

    def __init__(self, program: Program):
        self.program = program
        self.constraints = [(c, scoped(c.select)) for c in program.constraints
                            if not c.deactivated]
        self.traces = [(t, scoped(t.text)) for t in program.traces]
        self.rules = [(r, scoped_rule(r.text)) for r in program.rules]

    @property
    def per_case(self) -> list[str]:
        """The queries run per case (shape or criterion IRIs), for the docs and tests."""
        return ([r.source for r, s in self.rules if s is None]
                + [c.shape for c, s in self.constraints if s is None]
                + [t.criterion for t, s in self.traces if s is None])


_PLANS: dict = {}


def plan_for(program: Program) -> _Plan:
    plan = _PLANS.get(id(program))
    if plan is None or plan.program is not program:
        plan = _PLANS[id(program)] = _Plan(program)
    return plan


def runner_for(state: dict):
    """A block runner for a batch worker's state (reasoner/batch/state.py), or None when its
    pack does not run on the compiled engine."""
    reasoner = state["reasoner"]
    pack = reasoner.kb.pack(state["policy"])
    if reasoner.determiner.engine_for(pack) != "compiled":
        return None

    def run(items):
        return decide_block(reasoner, state["policy"], state["version"],
                            state.get("output", "store"), items)

    return run


def decide_block(reasoner, policy_id: str, version: str | None, output: str, items) -> list:
    """Decide `items` (paths or `Inline` cases) set-at-a-time: CaseResults in item order."""
    from ..batch.state import paused_gc

    with paused_gc():
        return _decide_block(reasoner, policy_id, version, output, items)


def _decide_block(reasoner, policy_id, version, output, items) -> list:
    from ..batch.state import decide_one, load_item, result_of

    starts = [time.perf_counter()] * len(items)
    cases: list = [None] * len(items)
    for i, item in enumerate(items):
        try:
            # loading checks the size limits (reasoner/guard); the rest of the guard runs in
            # `determine`, which refuses the case before its block results are read
            cases[i] = load_item(reasoner, item)
        except Exception:  # decided on its own below: the same error as one at a time
            cases[i] = None
    det = reasoner.determiner
    pack = reasoner.kb.pack(policy_id)
    ready = [c for c in cases if c is not None]
    try:
        computed = validate_block(det, pack, ready) if ready else {}
    except Exception:  # e.g. a rule failing on one case's data: each case on its own, as
        computed = {}  # one at a time (its error is then worded as there)
    original = det.validate

    def validate(case, pack_, checked=False, report_graph=False):
        found = computed.pop(id(case.graph), None) if pack_ is pack and not report_graph \
            else None
        return found if found is not None else original(case, pack_, checked, report_graph)

    out = []
    det.validate = validate
    try:
        for i, (item, case) in enumerate(zip(items, cases)):
            if case is None:
                out.append(decide_one(item))
                continue
            try:
                d = reasoner.determine(case, policy_id, version)
                out.append(result_of(reasoner, d, case, str(item), starts[i], output))
            except Exception:
                computed.pop(id(case.graph), None)
                out.append(decide_one(item))  # its own error, worded as one at a time
    finally:
        del det.validate  # the class's method again
    return out


STORE_CASES = 16
"""Cases per pyoxigraph store inside a block. A query whose default graph is one named graph of
a store, or a pattern inside `GRAPH ?g`, costs more the more graphs the store holds (measured
with the generated cases of bench/: rules 0.4 ms per case in a store of one case, 5.7 ms in a
store of 200); the saving of running each scoped query once is kept with a few cases per store
(bench/bench_batch.py: 14 ms per case of SPARQL at 10 to 20 cases per store, 23 ms at 200)."""


def validate_block(det, pack, cases) -> dict:
    """id(case.graph) -> (CaseGraph, ShapesReport) for every case, as `Determiner.validate`
    gives them on the compiled engine; the cases are run `STORE_CASES` to a store."""
    program = det.program(pack)
    plan = plan_for(program)
    terms = det._compiled_terms()
    out: dict = {}
    for k in range(0, len(cases), STORE_CASES):
        out.update(_validate_store(det, plan, terms, cases[k:k + STORE_CASES]))
    return out


def _validate_store(det, plan, terms, cases) -> dict:
    from ..determine.case_graph import CaseGraph, case_chunks

    store = Store()
    runs = []
    for i, case in enumerate(cases):
        runs.append(_load(store, _GRAPHS[i], case, det.kb, terms, case_chunks))
    for rule, text in plan.rules:
        _rule(rule, text, store, runs)
    results = [[] for _ in runs]
    for c, text in plan.constraints:
        _constraint(c, text, store, runs, results)
    traces = [{} for _ in runs]
    for t, text in plan.traces:
        _trace(t, text, store, runs, traces)
    out = {}
    for case, run, res, rows in zip(cases, runs, results, traces):
        res.sort(key=lambda r: (str(r.source_shape), str(r.focus_node), str(r.value)))
        report = ShapesReport(not res, res, None, _text(res))
        out[id(case.graph)] = (CaseGraph(run.data, run.inferred, rows), report)
    return out


_GRAPHS = [NamedNode(f"urn:x-block:{i}") for i in range(STORE_CASES)]


class _Run:
    __slots__ = ("graph", "scope", "data", "inferred", "request", "focus")

    def __init__(self, graph, scope, request):
        self.graph, self.scope, self.request = graph, scope, request
        self.data, self.inferred = CaseIndex(), CaseIndex()
        self.focus: dict = {}


def _load(store, graph, case, kb, terms, case_chunks) -> _Run:
    """The case's graph before inference into its named graph (as compiled_run.run_program)."""
    run = _Run(graph, terms.case(), case.request)
    conv, quads = run.scope.ox, []
    for key, triples in case_chunks(kb, case):
        if key is None:
            for t in triples:
                if run.data.add(t):
                    quads.append(Quad(conv(t[0]), conv(t[1]), conv(t[2]), graph))
            continue
        chunk_quads, chunk_index = terms.chunk(key, triples)
        run.data.merge(chunk_index)
        quads.extend(_chunk_in(graph, key, chunk_quads, terms))
    store.extend(quads)
    return run


_CHUNKS_MAX = 4_000
"""Knowledge chunks kept with their quads already in a case graph's name (`_chunk_in`): the
same few graph names serve every store, so a chunk is converted once per name, not per case;
bounded so that a batch over many distinct concepts stays flat in memory."""


def _chunk_in(graph, key, chunk_quads, terms) -> list:
    """A knowledge chunk's quads in a case graph, kept per graph name (bounded)."""
    kept = terms.__dict__.setdefault("block_chunks", {})  # with the knowledge's terms
    quads = kept.get((graph, key))
    if quads is None:
        quads = [Quad(q.subject, q.predicate, q.object, graph) for q in chunk_quads]
        if len(kept) >= _CHUNKS_MAX:
            kept.clear()
        kept[(graph, key)] = quads
    return quads


def _rule(rule, text, store, runs) -> None:
    """One rule on every case of the block, once (`scoped_rule`) or per case; each case's new
    triples are added to its graph and indexed as inferred (compiled_run.run_program, step 1)."""
    try:
        if text is not None:
            store.update(text)
            for run in runs:
                new_graph = NamedNode(run.graph.value + "/new")
                made = list(store.quads_for_pattern(None, None, None, new_graph))
                store.remove_graph(new_graph)
                _add_new(store, run, made)
            return
        requires = [NamedNode(p) for p in getattr(rule, "requires", ())]
        for run in runs:
            if any(next(store.quads_for_pattern(None, p, None, run.graph), None) is None
                   for p in requires):
                continue  # a predicate its every solution needs has no triple (compiled_run)
            _add_new(store, run, list(store.query(rule.text, default_graph=run.graph)))
    except KnowledgeError:
        raise
    except Exception as exc:  # a rule that fails on data is a knowledge-base bug
        raise KnowledgeError(f"rule failed: {exc}", source=rule.source) from None


def _add_new(store, run, constructed) -> None:
    add_inferred(store, constructed, run.graph, run.scope, run.data, run.inferred)


def _focus_nodes(store, run, targets) -> list:
    nodes = run.focus.get(targets)
    if nodes is None:
        found: dict = {}
        for kind, iri in targets:
            if kind == "node":
                found[NamedNode(iri)] = None
            else:
                for q in store.quads_for_pattern(None, NamedNode(iri), None, run.graph):
                    found[q.subject if kind == "subjectsOf" else q.object] = None
        nodes = run.focus[targets] = list(found)
    return nodes


def _rows_per_focus(store, text, pairs) -> dict:
    """Run a scoped query once for (run index, focus) pairs: solutions per pair, in order."""
    index = {run.graph: i for i, run, _ in pairs}
    values = " ".join(f"({run.graph} {focus})" for _, run, focus in pairs)
    solutions = store.query(text.replace("%VALUES%", values))
    names = [v.value for v in solutions.variables]
    gi, ti = names.index(_G), names.index("this")
    out: dict = {}
    for row in solutions:
        out.setdefault((index[row[gi]], row[ti]), []).append(row)
    return out, names


def _constraint(c, text, store, runs, results) -> None:
    pairs = [(i, run, f) for i, run in enumerate(runs) for f in _focus_nodes(store, run, c.targets)]
    if text is not None and pairs and not any(isinstance(f, BlankNode) for _, _, f in pairs):
        try:
            grouped, names = _rows_per_focus(store, text, pairs)
        except Exception as exc:
            raise KnowledgeError(f"SPARQL constraint of <{c.shape}> failed: {exc}") from None
        for i, run, focus in pairs:
            rows = grouped.get((i, focus), [])
            results[i].extend(solution_results(c, run.scope, focus, names, rows, skip=_G))
        return
    for i, run, focus in pairs:
        try:
            solutions = store.query(bind_this(c.select, focus), substitutions={_THIS: focus},
                                    default_graph=run.graph)
        except Exception as exc:
            raise KnowledgeError(f"SPARQL constraint of <{c.shape}> failed: {exc}") from None
        names = [v.value for v in solutions.variables]
        results[i].extend(solution_results(c, run.scope, focus, names, solutions))


def _trace(t, text, store, runs, traces) -> None:
    focus = [(i, run, run.scope.ox(run.request)) for i, run in enumerate(runs)]
    if text is not None and not any(isinstance(f, BlankNode) for _, _, f in focus):
        try:
            grouped, names = _rows_per_focus(store, text, focus)
        except Exception as exc:
            raise KnowledgeError(f"bad nr:traceQuery on <{t.criterion}>: {exc}") from None
        for i, run, f in focus:
            traces[i][t.criterion] = _trace_rows(run.scope, names, grouped.get((i, f), []))
        return
    for i, run, f in focus:
        try:
            solutions = store.query(bind_this(t.text, f), substitutions={_THIS: f},
                                    default_graph=run.graph)
        except Exception as exc:
            raise KnowledgeError(f"bad nr:traceQuery on <{t.criterion}>: {exc}") from None
        names = [v.value for v in solutions.variables]
        traces[i][t.criterion] = _trace_rows(run.scope, names, solutions)


def _trace_rows(scope, names, rows) -> list:
    i_fact = names.index("fact") if "fact" in names else None
    i_inf = names.index("inference") if "inference" in names else None
    return [(scope.rdf(row[i_fact] if i_fact is not None else None),
             scope.rdf(row[i_inf] if i_inf is not None else None)) for row in rows]


__all__ = ["decide_block", "plan_for", "runner_for", "scoped", "validate_block"]
