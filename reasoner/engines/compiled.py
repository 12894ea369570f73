"""The compiled engine, part 1: what a policy pack runs, as plain data (`Program`).

The compiled engine runs the inference rules, the pack's SHACL-SPARQL condition shapes and its
trace queries per case in pyoxigraph (`reasoner/engines/compiled_run.py`), instead of rdflib and
pySHACL. `compile_pack` reads the pack once and writes down everything that run needs as strings
(IRIs, SPARQL texts with their PREFIX lines, message templates), so a `Program` pickles, can be
cached on disk and shipped to worker processes. pySHACL stays the reference engine
(`reasoner/engines/shacl.py`); a test runs both on every case of the repo.

The compiled engine implements the part of SHACL the packs use: node shapes with
`sh:targetNode`, `sh:targetSubjectsOf` or `sh:targetObjectsOf` and SHACL-SPARQL constraints
(SHACL 5.2 `sh:select`, `sh:prefixes` resolved as SHACL 5.2.1 and pySHACL do, `sh:message`,
`sh:deactivated`, `sh:severity`). A pack using anything else (a SHACL Core constraint component,
a property shape, a class target, a SPARQL-based constraint component, an unresolved prefix
declaration, a query oxigraph cannot parse) gets a `fallback` reason and is run by pySHACL: authors
may write any SHACL, only the engine that runs it changes. `reasoner check` prints the reasons.

Field names of `Program`, `Rule`, `Constraint` and `Trace` are stable (the batch engine reuses
them):

* `Program.policy_id`: the pack; `Program.rules`: the inference rules in the order they run (each
  sees the triples the earlier ones inferred); `Program.constraints`: every active SPARQL
  constraint of every shape, in shape-IRI order; `Program.traces`: the `nr:traceQuery` of each
  criterion; `Program.fallback`: None, or why the pack must run on pySHACL.
* `Rule.source` (the .rq path), `Rule.text` (CONSTRUCT text with the project PREFIX lines),
  `Rule.requires` (predicate IRIs every solution of its WHERE needs a triple of: while one has
  none in the store, the rule cannot infer anything and is not run).
* `Constraint.shape` (shape IRI), `.node` (the sh:sparql node's IRI, "" if blank), `.severity`
  (IRI), `.targets` (tuple of (kind, IRI), kind in `TARGET_KINDS`), `.select` (the sh:select text
  with the PREFIX lines of its sh:prefixes), `.messages` (the sh:message templates, at most one;
  `{?var}`/`{$var}` substituted per SHACL 5.3.2), `.deactivated`, `.criterion` and `.kind` (the
  shape's `nr:conditionOf` and `nr:conditionKind`, or None).
* `Trace.criterion` (IRI), `Trace.text` (the SELECT with the pack's PREFIX lines and `$this`
  added to its projection: pyoxigraph pre-binds only projected variables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rdflib import BNode, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH

from ..vocab import NR, PREFIXES

#: target predicates the compiled engine evaluates, and the kind names used in `Constraint`
TARGET_KINDS = {SH.targetNode: "node", SH.targetSubjectsOf: "subjectsOf",
                SH.targetObjectsOf: "objectsOf"}
#: SHACL terms on a shape that change nothing the compiled engine must do
_SHAPE_ANNOTATIONS = {SH.severity, SH.message, SH.sparql, SH.deactivated, SH.name,
                      SH.description, SH.order, SH.group, *TARGET_KINDS}
_CONSTRAINT_TERMS = {SH.select, SH.message, SH.prefixes, SH.deactivated}
#: variables SHACL pre-binds besides $this (SHACL 5.3.1); the compiled engine binds none of them
_OTHER_PREBOUND = re.compile(r"[?$](currentShape|shapesGraph|PATH)\b")
_PROJECTS_THIS = re.compile(r"(?is)\bSELECT\s+(?:DISTINCT\s+|REDUCED\s+)?(?:[^{]*?)[?$]this\b")
_SELECT_HEAD = re.compile(r"(?i)\bSELECT(\s+(?:DISTINCT|REDUCED))?\s")


@dataclass(frozen=True)
class Rule:
    source: str
    text: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Constraint:
    shape: str
    node: str
    severity: str
    targets: tuple[tuple[str, str], ...]
    select: str
    messages: tuple[str, ...] = ()
    deactivated: bool = False
    criterion: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Trace:
    criterion: str
    text: str


@dataclass(frozen=True)
class Program:
    """What one pack runs per case, as plain data (see the module docstring for the fields)."""

    policy_id: str
    rules: tuple[Rule, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    traces: tuple[Trace, ...] = ()
    fallback: str | None = None
    #: for `reasoner check`: what the pack runs, in words
    summary: str = field(default="")

    @property
    def engine(self) -> str:
        return "pyshacl" if self.fallback else "compiled"


class _Fallback(Exception):
    """The pack uses something the compiled engine does not implement."""


def prefix_lines(prefixes: dict) -> str:
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in prefixes.items())


def compile_rules(rules) -> tuple[Rule, ...]:
    """The inference rules (`knowledge/rules/*.rq`, in the order given, as paths or as the
    knowledge base's (path, prepared query) pairs): rdflib prepares them with the project
    prefixes as initial namespaces, so the same prefixes are declared ahead of each text (its
    own PREFIX lines, coming later, take precedence as they do in rdflib)."""
    head = prefix_lines(PREFIXES)
    out = []
    for rule in rules:
        path, prepared = rule if isinstance(rule, tuple) else (rule, None)
        requires = ()
        if prepared is not None:
            requires = tuple(sorted(required_predicates(prepared.algebra)))
        out.append(Rule(str(path), head + path.read_text(), requires))
    return tuple(out)


#: algebra operators whose solutions all extend a solution of their one operand `p`
_UNARY = {"ConstructQuery", "SelectQuery", "Project", "Distinct", "Reduced", "OrderBy", "Slice",
          "Filter", "Extend", "ToMultiSet", "AggregateJoin"}


def required_predicates(node) -> set[str]:
    """The predicate IRIs a query's WHERE cannot match without (SPARQL 1.1 section 18 algebra,
    as rdflib builds it): those of the triple patterns every solution joins, not those under
    OPTIONAL, MINUS's right side, UNION, EXISTS or an aggregate over the implicit group (which
    has a solution on no input)."""
    name = getattr(node, "name", None)
    if name == "BGP":
        return {str(p) for _, p, _ in node.triples if isinstance(p, URIRef)}
    if name == "Join":
        return required_predicates(node.p1) | required_predicates(node.p2)
    if name in ("LeftJoin", "Minus"):
        return required_predicates(node.p1)
    if name == "Group":
        return required_predicates(node.p) if node.get("expr") is not None else set()
    if name in _UNARY:
        return required_predicates(node.p)
    return set()


def compile_pack(kb, pack) -> Program:
    """The Program of `pack` (a `reasoner.kb.PolicyPack`) under the rules of `kb`; `fallback`
    says why pySHACL must run it, if it must."""
    return compile_program(pack, compile_rules(kb.rules))


def compile_program(pack, rules: tuple[Rule, ...]) -> Program:
    """The Program of `pack` (anything with `policy_id`, `graph` and `sparql_prefixes`)."""
    traces = _traces(pack)
    try:
        constraints = _constraints(pack.graph)
        _check_parses(rules, constraints, traces)
    except _Fallback as why:
        return Program(pack.policy_id, rules, (), traces, fallback=str(why),
                       summary=f"pySHACL: {why}")
    summary = (f"compiled: {len(rules)} rules, {len(constraints)} SPARQL constraints, "
               f"{len(traces)} trace queries")
    return Program(pack.policy_id, rules, tuple(constraints), traces, None, summary)


def _traces(pack) -> tuple[Trace, ...]:
    out = []
    for criterion, text in sorted(pack.graph.subject_objects(NR.traceQuery)):
        body = _add_this(str(text))
        out.append(Trace(str(criterion), pack.sparql_prefixes + "\n" + body))
    return tuple(out)


def _add_this(text: str) -> str:
    """`$this` added to the outer SELECT's projection (pyoxigraph substitutes projected
    variables only; one bound value adds no row)."""
    if _PROJECTS_THIS.search(text) or re.search(r"(?i)\bSELECT\s+\*", text):
        return text
    return _SELECT_HEAD.sub(lambda m: f"SELECT{m.group(1) or ''} $this ", text, count=1)


def _term(node) -> str:
    """An IRI as its string; a blank node as "" (its id means nothing in another process)."""
    return "" if isinstance(node, BNode) else str(node)


def _shapes(g) -> list:
    """Every node pySHACL would validate as a shape with targets, refusing what we do not run."""
    shapes = set()
    for pred in TARGET_KINDS:
        shapes.update(g.subjects(pred, None))
    for s in g.subjects(SH.path, None):
        raise _Fallback(f"property shape <{s}> (sh:path)")
    for s in g.subjects(SH.targetClass, None):
        raise _Fallback(f"target kind sh:targetClass on <{s}>")
    for s in g.subjects(RDF.type, SH.PropertyShape):
        raise _Fallback(f"property shape <{s}>")
    for s in g.subjects(RDF.type, SH.ConstraintComponent):
        raise _Fallback(f"SPARQL-based constraint component <{s}>")
    for s in g.subjects(RDF.type, SH.NodeShape):
        if (s, RDF.type, RDFS.Class) in g or (s, RDF.type, OWL.Class) in g:
            raise _Fallback(f"implicit class target on <{s}>")
    for s, p, _ in g:
        if str(p).startswith(str(SH)) and p not in _SHAPE_ANNOTATIONS | _CONSTRAINT_TERMS \
                and p not in (SH.declare, SH.prefix, SH.namespace) \
                and (s in shapes or (s, RDF.type, SH.NodeShape) in g):
            raise _Fallback(f"SHACL Core constraint {p.n3(g.namespace_manager)} on <{s}>")
    return sorted(shapes, key=str)


def _constraints(g) -> list[Constraint]:
    out = []
    for shape in _shapes(g):
        for p in g.predicates(shape, None):
            if str(p).startswith(str(SH)) and p not in _SHAPE_ANNOTATIONS:
                raise _Fallback(f"SHACL Core constraint {p.n3(g.namespace_manager)} on <{shape}>")
        targets = tuple(sorted((kind, str(o)) for pred, kind in TARGET_KINDS.items()
                               for o in g.objects(shape, pred)))
        if any(not isinstance(o, URIRef) for pred in TARGET_KINDS for o in g.objects(shape, pred)):
            raise _Fallback(f"a target of <{shape}> is not an IRI")
        severity = g.value(shape, SH.severity) or SH.Violation
        shape_off = _flag(g, shape)
        criterion = g.value(shape, NR.conditionOf)
        kind = g.value(shape, NR.conditionKind)
        for node in sorted(g.objects(shape, SH.sparql), key=str):
            for p in g.predicates(node, None):
                if str(p).startswith(str(SH)) and p not in _CONSTRAINT_TERMS:
                    raise _Fallback(f"{p.n3(g.namespace_manager)} on the sh:sparql of <{shape}>")
            selects = list(g.objects(node, SH.select))
            if len(selects) != 1 or not isinstance(selects[0], Literal):
                raise _Fallback(f"<{shape}>: a sh:sparql without exactly one sh:select")
            text = str(selects[0])
            if _OTHER_PREBOUND.search(text):
                raise _Fallback(f"<{shape}>: sh:select uses a pre-bound variable other than $this")
            if not _PROJECTS_THIS.search(text):
                raise _Fallback(f"<{shape}>: sh:select does not return $this")
            messages = _messages(g, shape, node)
            out.append(Constraint(
                shape=str(shape), node=_term(node), severity=str(severity), targets=targets,
                select=prefix_lines(_prefixes(g, node)) + "\n" + text, messages=messages,
                deactivated=shape_off or _flag(g, node),
                criterion=str(criterion) if criterion is not None else None,
                kind=str(kind) if kind is not None else None))
    return out


def _flag(g, node) -> bool:
    value = g.value(node, SH.deactivated)
    return value is not None and value.toPython() is True


def _messages(g, shape, node) -> tuple[str, ...]:
    """pySHACL reports the constraint's messages not among the shape's, then the shape's; with
    more than one, which one a report reader sees is arbitrary, so such a pack runs on pySHACL."""
    shape_msgs = list(g.objects(shape, SH.message))
    msgs = [m for m in g.objects(node, SH.message) if m not in shape_msgs] + shape_msgs
    if len(set(msgs)) > 1:
        raise _Fallback(f"<{shape}> has {len(set(msgs))} sh:message values")
    for m in msgs:
        if not isinstance(m, Literal):
            raise _Fallback(f"<{shape}>: a sh:message that is not a literal")
    return tuple(str(m) for m in msgs)


def _prefixes(g, node) -> dict:
    """The prefixes of a SPARQL constraint as pySHACL collects them (SHACL 5.2.1): the
    sh:declare of each sh:prefixes value; one that is not itself an owl:Ontology with
    declarations also gets those of every owl:Ontology of the shapes graph."""
    out: dict = {}
    ontologies = set(g.subjects(RDF.type, OWL.Ontology))
    global_decls = {d for o in ontologies for d in g.objects(o, SH.declare)}
    for value in g.objects(node, SH.prefixes):
        own = set(g.objects(value, SH.declare))
        decls = own if own and value in ontologies else own | global_decls
        if not decls:
            raise _Fallback(f"sh:prefixes <{value}> declares no prefix")
        for decl in decls:
            prefix, ns = list(g.objects(decl, SH.prefix)), list(g.objects(decl, SH.namespace))
            if len(prefix) != 1 or len(ns) != 1 or isinstance(decl, Literal):
                raise _Fallback(f"sh:prefixes <{value}>: a declaration without exactly one "
                                f"sh:prefix and one sh:namespace")
            name, uri = str(prefix[0]), str(ns[0])
            if out.get(name, uri) != uri:
                raise _Fallback(f"prefix {name!r} declared with two namespaces")
            out[name] = uri
    return dict(sorted(out.items()))


def _check_parses(rules, constraints, traces) -> None:
    """Every query parses in oxigraph (a text rdflib reads and oxigraph does not runs on the
    engine that reads it, and reports its error as before)."""
    from pyoxigraph import NamedNode, Store, Variable

    from .compiled_run import bind_this

    store = Store()
    focus = NamedNode("urn:x-compile:this")
    this = {Variable("this"): focus}
    for label, text, subs in ([(r.source, r.text, None) for r in rules]
                              + [(c.shape, c.select, this) for c in constraints]
                              + [(t.criterion, t.text, this) for t in traces]):
        try:  # as compiled_run runs it
            result = (store.query(bind_this(text, focus), substitutions=subs) if subs
                      else store.query(text))
            list(result)
        except (SyntaxError, RuntimeError, ValueError) as exc:
            raise _Fallback(f"<{label}>: oxigraph cannot run this query "
                            f"({' '.join(str(exc).split())[:120]})") from None


__all__ = ["Constraint", "Program", "Rule", "Trace", "compile_pack", "compile_program",
           "compile_rules"]
