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
described from an insertion-ordered index of the same triples (`CaseIndex`), never from the store.
"""

from __future__ import annotations

import re

from pyoxigraph import BlankNode, DefaultGraph, Literal as OxLiteral, NamedNode, Quad, Store
from pyoxigraph import Variable
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SH, XSD

from ..errors import KnowledgeError
from .compiled import Program
from .shacl import ShapeResult, ShapesReport

_THIS, _VALUE, _PATH, _FAILURE = (Variable(v) for v in ("this", "value", "path", "failure"))
_XSD_STRING = str(XSD.string)
_LANG_STRING = str(RDF.langString)
#: terms of the knowledge base (predicates, classes, concepts) converted once per process
_KB_TERMS_MAX = 200_000


class CaseIndex:
    """The read-only part of rdflib's Graph API the determination uses (`value`, `objects`,
    `subjects`, `subject_objects`, `predicate_objects`, `in`, iteration), over a subject ->
    predicate -> objects index kept in insertion order, as rdflib's memory store keeps it: the
    same triples added in the same order answer the same as an rdflib Graph, at a fraction of
    the cost of building one."""

    __slots__ = ("_spo", "_len")

    def __init__(self):
        self._spo: dict = {}
        self._len = 0

    def add(self, triple) -> bool:
        s, p, o = triple
        objs = self._spo.setdefault(s, {}).setdefault(p, {})
        if o in objs:
            return False
        objs[o] = None
        self._len += 1
        return True

    def __contains__(self, triple) -> bool:
        s, p, o = triple
        return o in self._spo.get(s, {}).get(p, ())

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        return self.triples((None, None, None))

    def triples(self, pattern):
        s, p, o = pattern
        for subj in ((s,) if s is not None else tuple(self._spo)):
            for pred, objs in tuple(self._spo.get(subj, {}).items()):
                if p is not None and pred != p:
                    continue
                for obj in tuple(objs):
                    if o is None or obj == o:
                        yield subj, pred, obj

    def value(self, subject=None, predicate=RDF.value, object=None, default=None, any=True):  # noqa: A002
        for obj in self._spo.get(subject, {}).get(predicate, ()):
            return obj
        return default

    def objects(self, subject=None, predicate=None, unique=False):
        for _, _, o in self.triples((subject, predicate, None)):
            yield o

    def subjects(self, predicate=None, object=None, unique=False):  # noqa: A002
        for s, _, _ in self.triples((None, predicate, object)):
            yield s

    def subject_objects(self, predicate=None, unique=False):
        for s, _, o in self.triples((None, predicate, None)):
            yield s, o

    def predicate_objects(self, subject=None, unique=False):
        for _, p, o in self.triples((subject, None, None)):
            yield p, o


class Terms:
    """rdflib <-> pyoxigraph terms. Knowledge-base terms are converted once per process; a
    case's own terms per case (`case()` gives a fresh scope), so memory stays flat."""

    def __init__(self):
        self.kb: dict = {}
        self.kb_back: dict = {}
        self.chunks: dict = {}

    def chunk(self, key, triples) -> list:
        """The quads of a knowledge chunk (`case_chunks`), converted on first use."""
        quads = self.chunks.get(key)
        if quads is None:
            conv = self.kb_term
            quads = [Quad(conv(s), conv(p), conv(o), DefaultGraph()) for s, p, o in triples]
            if len(self.chunks) < _KB_TERMS_MAX:
                self.chunks[key] = quads
        return quads

    def case(self) -> "CaseTerms":
        return CaseTerms(self)

    def kb_term(self, term):
        ox = self.kb.get(term)
        if ox is None:
            ox = to_ox(term)
            if len(self.kb) < _KB_TERMS_MAX:
                self.kb[term] = ox
                self.kb_back.setdefault(ox, term)
        return ox


class CaseTerms:
    def __init__(self, terms: Terms):
        self.terms = terms
        self.fwd: dict = {}
        self.back: dict = {}
        self._by_value: dict | None = None

    def ox(self, term):
        ox = self.terms.kb.get(term)
        if ox is None:
            ox = self.fwd.get(term)
            if ox is None:
                ox = self.fwd[term] = to_ox(term)
                self.back.setdefault(ox, term)
        return ox

    def rdf(self, ox):
        """The case's (or the knowledge's) own term for an oxigraph term; a literal oxigraph
        wrote in canonical form is matched by value; a term no input had (inferred) is new."""
        if ox is None:
            return None
        term = self.back.get(ox)
        if term is None:
            term = self.terms.kb_back.get(ox)
        if term is None:
            term = from_ox(ox)
            if isinstance(term, Literal):
                term = self._literal(term)
        return term

    def _literal(self, lit: Literal) -> Literal:
        if self._by_value is None:
            self._by_value = {}
            for rdf in list(self.fwd) + list(self.terms.kb):
                if isinstance(rdf, Literal) and rdf.datatype is not None:
                    self._by_value.setdefault((rdf.datatype, _value_key(rdf)), rdf)
        if lit.datatype is None:
            return lit
        return self._by_value.get((lit.datatype, _value_key(lit)), lit)


def _value_key(lit: Literal):
    try:
        return lit.toPython() if not lit.ill_typed else str(lit)
    except Exception:  # an ill-formed lexical form compares as text
        return str(lit)


def to_ox(term):
    if isinstance(term, URIRef):
        return NamedNode(str(term))
    if isinstance(term, BNode):
        return BlankNode(str(term))
    if term.language:
        return OxLiteral(str(term), language=term.language)
    if term.datatype is not None:
        return OxLiteral(str(term), datatype=NamedNode(str(term.datatype)))
    return OxLiteral(str(term))


def from_ox(ox):
    if isinstance(ox, NamedNode):
        return URIRef(ox.value)
    if isinstance(ox, BlankNode):
        return BNode(ox.value)
    if ox.language:
        return Literal(ox.value, lang=ox.language)
    dt = ox.datatype.value
    return Literal(ox.value) if dt == _XSD_STRING else Literal(ox.value, datatype=URIRef(dt))


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
        for t in triples:
            data.add(t)
        quads.extend(terms.chunk(key, triples))
    store = Store()
    store.extend(quads)
    inferred = CaseIndex()
    for rule in program.rules:
        try:
            constructed = list(store.query(rule.text))
        except Exception as exc:  # a rule that fails on data is a knowledge-base bug
            raise KnowledgeError(f"rule failed: {exc}", source=rule.source) from None
        new = []
        for tr in constructed:
            quad = Quad(tr.subject, tr.predicate, tr.object, DefaultGraph())
            if quad not in store:
                store.add(quad)
                new.append(tr)
        # rdflib adds a CONSTRUCT's triples grouped by subject, then predicate
        groups: dict = {}
        for tr in new:
            groups.setdefault(tr.subject, {}).setdefault(tr.predicate, []).append(tr.object)
        for s, preds in groups.items():
            for p, objs in preds.items():
                for o in objs:
                    triple = (scope.rdf(s), scope.rdf(p), scope.rdf(o))
                    data.add(triple)
                    inferred.add(triple)
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
            seen = []
            failed = False
            for row in solutions:
                bound = {n: row[i] for i, n in enumerate(names) if row[i] is not None}
                if "failure" in bound:
                    if failed:
                        continue
                    failed = True
                    bound.pop("failure")
                    results.append(_result(c, scope, focus, None, None, None, bound))
                    continue
                p, v, t = bound.pop("path", None), bound.pop("value", None), bound.pop("this", None)
                if p is None and v is None and t is None:
                    continue
                key = (t, p, v, bound)
                if key in seen:
                    continue
                seen.append(key)
                results.append(_result(c, scope, focus, t, p, v, bound))
    results.sort(key=lambda r: (str(r.source_shape), str(r.focus_node), str(r.value)))
    return ShapesReport(not results, results, None, _text(results))


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
                       result_path=rdf(p) if p is not None else None)


def _text(results) -> str:
    lines = ["Validation Report", f"Conforms: {not results}"]
    if results:
        lines.append(f"Results ({len(results)}):")
    for r in results:
        lines.append(f"{str(r.severity).rsplit('#', 1)[-1]} in <{r.source_shape}>: "
                     f"focus {r.focus_node}, value {r.value}: {r.message}")
    return "\n".join(lines) + "\n"


def report_graph(report: ShapesReport) -> Graph:
    """The SHACL validation report (SHACL 3.6) of a compiled run as RDF."""
    g = Graph()
    g.bind("sh", SH)
    root = BNode()
    g.add((root, RDF.type, SH.ValidationReport))
    g.add((root, SH.conforms, Literal(report.conforms)))
    for r in report.results:
        node = BNode()
        g.add((root, SH.result, node))
        g.add((node, RDF.type, SH.ValidationResult))
        g.add((node, SH.focusNode, r.focus_node))
        g.add((node, SH.sourceShape, r.source_shape))
        g.add((node, SH.resultSeverity, r.severity))
        g.add((node, SH.sourceConstraintComponent, SH.SPARQLConstraintComponent))
        if r.value is not None:
            g.add((node, SH.value, r.value))
        if r.result_path is not None:
            g.add((node, SH.resultPath, r.result_path))
        if r.message is not None:
            g.add((node, SH.resultMessage, Literal(r.message)))
    return g


def trace(program: Program, store: Store, scope: CaseTerms, request) -> dict:
    """criterion IRI -> [(fact, inference)] rows of its trace query, `$this` = the request."""
    out = {}
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
