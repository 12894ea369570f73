"""The compiled engine, part 2: a `Program` (reasoner/engines/compiled.py) run on one case in
pyoxigraph.

Per case, one in-memory oxigraph store holds the per-case graph (the same triples as
`reasoner/determine/case_graph.py` builds, from the same generator); then, in order:

1. the inference rules, each a CONSTRUCT whose new triples are added before the next rule runs
   (the triples no rule input had are the inferred ones, kept apart as in the rdflib path);
2. each active SHACL-SPARQL constraint, once per focus node of its targets, with `$this`
   pre-bound to the focus node (SHACL 1.1 section 5.3.1, pyoxigraph `substitutions`); each
   solution is a validation result as SHACL 5.3.2 and pySHACL make it: focus node `$this`, value
   `?value` else the focus node, path `?path`, the message template with `{?var}` / `{$var}`
   replaced by the solution's values, solutions equal in this, path, value and the other
   variables reported once; a bound `?failure` is one result without value variables;
3. each criterion's trace query, `$this` pre-bound to the index request.

Oxigraph stores numbers, dates and booleans in canonical form (40.0 reads back as 40), so every
term a result names is mapped back to the case's own rdflib term; the facts and the summary are
described from an insertion-ordered index of the same triples (`CaseIndex`, in
`compiled_data.py`), never from the store.
"""

from __future__ import annotations

import re

from pyoxigraph import BlankNode, DefaultGraph, NamedNode, Quad, Store, Variable
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SH

from ..errors import KnowledgeError
from .compiled import Program
from .compiled_data import CaseIndex, CaseTerms, Terms
from .shacl import ShapeResult, ShapesReport

_THIS = Variable("this")


class CaseRun:
    """What the compiled engine computed for one case (rdflib terms throughout)."""

    __slots__ = ("data", "inferred", "report", "trace_rows")

    def __init__(self, data, inferred, report, trace_rows):
        self.data = data
        self.inferred = inferred
        self.report = report
        self.trace_rows = trace_rows


def run_program(program: Program, chunks, terms: Terms, request) -> CaseRun:
    """Run `program` on the per-case graph given as `chunks` (`(key, triples)` pairs in the
    order `reasoner/determine/case_graph.case_chunks` yields them: a chunk with a key is
    knowledge, converted once per process); `request` is the index request (the focus of the
    trace queries)."""
    scope = terms.case()
    data = CaseIndex()
    quads = []
    conv = scope.ox
    for key, triples in chunks:
        if key is None:
            for t in triples:
                if data.add(t):
                    quads.append(Quad(conv(t[0]), conv(t[1]), conv(t[2]), DefaultGraph()))
            continue
        chunk_quads, chunk_index = terms.chunk(key, triples)
        data.merge(chunk_index)
        quads.extend(chunk_quads)
    store = Store()
    store.extend(quads)
    inferred = CaseIndex()
    for rule in program.rules:
        if any(next(store.quads_for_pattern(None, NamedNode(p), None), None) is None
               for p in rule.requires):
            continue  # a predicate its every solution needs has no triple: nothing to infer
        try:
            constructed = list(store.query(rule.text))
        except Exception as exc:  # a rule that fails on data is a knowledge-base bug
            raise KnowledgeError(f"rule failed: {exc}", source=rule.source) from None
        add_inferred(store, constructed, DefaultGraph(), scope, data, inferred)
    report = validate(program, store, scope)
    trace_rows = trace(program, store, scope, request)
    return CaseRun(data, inferred, report, trace_rows)


_THIS_TOKEN = re.compile(r"[?$]this\b")
_BODY_START = re.compile(r"(?is)\bSELECT\b[^{]*\{")
_TEMPLATES: dict = {}


def bind_this(text: str, focus) -> str:
    """`text` with `$this` pre-bound to `focus` (SHACL 5.3.1: every occurrence in the query
    pattern is the focus node). pyoxigraph's `substitutions` fix the value of a projected
    variable but leave it unbound where the pattern does not bind it first (`BIND($this AS
    ?fact)`), so an IRI or literal focus node is also written into the pattern itself; the
    projection keeps `$this`, which `substitutions` binds. A blank node cannot be written into
    a query: it is bound by `substitutions` only."""
    parts = _TEMPLATES.get(text)
    if parts is None:
        m = _BODY_START.search(text)
        cut = m.end() if m else 0
        parts = _TEMPLATES[text] = [text[:cut]] + _THIS_TOKEN.split(text[cut:])
    if isinstance(focus, BlankNode) or len(parts) == 2:
        return text
    return parts[0] + str(focus).join(parts[1:])


def _focus_nodes(store: Store, targets, cache: dict) -> list:
    nodes = cache.get(targets)
    if nodes is None:
        found: dict = {}
        for kind, iri in targets:
            if kind == "node":
                found[NamedNode(iri)] = None
            elif kind == "subjectsOf":
                for q in store.quads_for_pattern(None, NamedNode(iri), None):
                    found[q.subject] = None
            else:
                for q in store.quads_for_pattern(None, NamedNode(iri), None):
                    found[q.object] = None
        nodes = cache[targets] = list(found)
    return nodes


def validate(program: Program, store: Store, scope: CaseTerms) -> ShapesReport:
    """The pack's SHACL-SPARQL constraints on the store, as pySHACL reports them."""
    results = []
    focus_cache: dict = {}
    for c in program.constraints:
        if c.deactivated:
            continue
        for focus in _focus_nodes(store, c.targets, focus_cache):
            try:
                solutions = store.query(bind_this(c.select, focus), substitutions={_THIS: focus})
            except Exception as exc:
                raise KnowledgeError(f"SPARQL constraint of <{c.shape}> failed: {exc}") from None
            names = [v.value for v in solutions.variables]
            results.extend(solution_results(c, scope, focus, names, solutions))
    results.sort(key=lambda r: (str(r.source_shape), str(r.focus_node), str(r.value)))
    return ShapesReport(not results, results, None, _text(results))


def add_inferred(store, constructed, graph, scope, data, inferred) -> None:
    """Add a rule's CONSTRUCTed triples that `graph` of `store` lacks, and record them in the
    case's `data` and `inferred` indexes, grouped by subject, then predicate, as rdflib adds a
    CONSTRUCT's triples (so both engines, per case and per block, describe facts alike)."""
    groups: dict = {}
    for tr in constructed:
        quad = Quad(tr.subject, tr.predicate, tr.object, graph)
        if quad not in store:
            store.add(quad)
            groups.setdefault(tr.subject, {}).setdefault(tr.predicate, []).append(tr.object)
    rdf = scope.rdf
    for s, preds in groups.items():
        for p, objs in preds.items():
            for o in objs:
                triple = (rdf(s), rdf(p), rdf(o))
                data.add(triple)
                inferred.add(triple)


def solution_results(c, scope, focus, names, rows, skip=None) -> list:
    """The validation results of one constraint's solutions for one focus node (SHACL 1.1
    5.3.2: a `?failure` solution is one failure result; each distinct this/path/value row is
    one result, its other bindings filling the message); `skip`: a variable not to bind."""
    out, seen, failed = [], [], False
    for row in rows:
        bound = {n: row[k] for k, n in enumerate(names) if row[k] is not None and n != skip}
        if "failure" in bound:
            if failed:
                continue
            failed = True
            bound.pop("failure")
            out.append(_result(c, scope, focus, None, None, None, bound))
            continue
        p, v, t = bound.pop("path", None), bound.pop("value", None), bound.pop("this", None)
        if p is None and v is None and t is None:
            continue
        key = (t, p, v, bound)
        if key in seen:
            continue
        seen.append(key)
        out.append(_result(c, scope, focus, t, p, v, bound))
    return out


def _result(c, scope: CaseTerms, focus, t, p, v, others: dict) -> ShapeResult:
    rdf = scope.rdf
    focus_node = rdf(t or focus)
    value = rdf(v) if v is not None else rdf(focus)
    fdict = {k: rdf(x) for k, x in others.items()}
    if t is not None or p is not None or v is not None:
        for name, x in (("this", t), ("path", p)):
            if x is not None:
                fdict[name] = rdf(x)
        fdict["value"] = value
    message = None
    for template in c.messages:
        message = template
        for var, val in fdict.items():
            message = re.sub("{{[?$]{}}}".format(var), str(val), message)
    return ShapeResult(focus_node=focus_node, source_shape=URIRef(c.shape),
                       severity=URIRef(c.severity), value=value, message=message,
                       result_path=rdf(p) if p is not None else None, constraint=c)


def _text(results) -> str:
    lines = ["Validation Report", f"Conforms: {not results}"]
    if results:
        lines.append(f"Results ({len(results)}):")
    for r in results:
        lines.append(f"{str(r.severity).rsplit('#', 1)[-1]} in <{r.source_shape}>: "
                     f"focus {r.focus_node}, value {r.value}: {r.message}")
    return "\n".join(lines) + "\n"


def report_graph(report: ShapesReport, shapes: Graph | None = None) -> Graph:
    """The SHACL validation report (SHACL 3.6) of a compiled run as RDF, as pySHACL writes it:
    `sh:sourceConstraint` (SHACL 3.6.2) is the `sh:sparql` node of `shapes`, a blank node
    copied with its description, once per report."""
    g = Graph()
    g.bind("sh", SH)
    root = BNode()
    g.add((root, RDF.type, SH.ValidationReport))
    g.add((root, SH.conforms, Literal(report.conforms)))
    copied: dict = {}
    for r in report.results:
        node = BNode()
        g.add((root, SH.result, node))
        g.add((node, RDF.type, SH.ValidationResult))
        g.add((node, SH.focusNode, r.focus_node))
        g.add((node, SH.sourceShape, r.source_shape))
        g.add((node, SH.resultSeverity, r.severity))
        g.add((node, SH.sourceConstraintComponent, SH.SPARQLConstraintComponent))
        source = _source_constraint(shapes, r.constraint, g, copied)
        if source is not None:
            g.add((node, SH.sourceConstraint, source))
        if r.value is not None:
            g.add((node, SH.value, r.value))
        if r.result_path is not None:
            g.add((node, SH.resultPath, r.result_path))
        if r.message is not None:
            g.add((node, SH.resultMessage, Literal(r.message)))
    return g


def _source_constraint(shapes: Graph | None, c, g: Graph, copied: dict):
    """The shapes graph's node of constraint `c` (an IRI, or its blank node copied into `g`)."""
    if shapes is None or c is None:
        return None
    if c.node:
        return URIRef(c.node)
    key = (c.shape, c.select)
    if key not in copied:
        found = [n for n in shapes.objects(URIRef(c.shape), SH.sparql) if isinstance(n, BNode)
                 and c.select.endswith("\n" + str(shapes.value(n, SH.select)))]
        copied[key] = _copy_blank(shapes, found[0], g) if len(found) == 1 else None
    return copied[key]


def _copy_blank(source: Graph, node: BNode, g: Graph) -> BNode:
    if (node, None, None) in g:  # copied already (a cycle of blank nodes ends here)
        return node
    for p, o in source.predicate_objects(node):
        g.add((node, p, _copy_blank(source, o, g) if isinstance(o, BNode) else o))
    return node


def trace(program: Program, store: Store, scope: CaseTerms, request) -> dict:
    """criterion IRI -> [(fact, inference)] rows of its trace query, `$this` = the request."""
    out = {}
    if request is None or not program.traces:
        return out
    focus = scope.ox(request)
    for t in program.traces:
        try:
            solutions = store.query(bind_this(t.text, focus), substitutions={_THIS: focus})
        except Exception as exc:
            raise KnowledgeError(f"bad nr:traceQuery on <{t.criterion}>: {exc}") from None
        names = [v.value for v in solutions.variables]
        i_fact = names.index("fact") if "fact" in names else None
        i_inf = names.index("inference") if "inference" in names else None
        rows = []
        for row in solutions:
            fact = row[i_fact] if i_fact is not None else None
            inference = row[i_inf] if i_inf is not None else None
            rows.append((scope.rdf(fact), scope.rdf(inference)))
        out[t.criterion] = rows
    return out
