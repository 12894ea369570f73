"""Step 1: the per-case graph the shapes validate (docs/architecture.md, "The per-case graph"):
`case_chunks` yields it for both engines, `build_case_graph` builds it in rdflib for pySHACL."""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from ..case import Case
from ..engines.shacl import PreparedQueryGraph
from ..errors import KnowledgeError
from ..guard import check_case
from ..kb import KnowledgeBase
from ..vocab import CODE_BASE


@dataclass
class CaseGraph:
    """The per-case graph the shapes validate, and the part of it that rules inferred.

    On the compiled engine (`reasoner/engines/compiled_run.py`) `data` and `inferred` are
    `CaseIndex`es (the read-only Graph API the determination uses) and `trace_rows` holds each
    criterion's trace-query rows, computed with the shapes; on pySHACL they are rdflib Graphs and
    the trace queries run on `data` when the facts are traced."""

    data: Graph
    inferred: Graph
    trace_rows: dict | None = None
    described: dict = field(default_factory=dict, repr=False, compare=False)
    """Facts already described on this graph (`FactTracer.trace`): a fact several criteria
    rest on is described once."""


def case_chunks(kb: KnowledgeBase, case: Case):
    """The per-case graph before inference, in the order both engines add it, as (key, triples)
    chunks: the case triples, the type closure of its classes, the knowledge about each concept
    it uses (a concept and its ancestors, docs/architecture.md "The per-case graph"), the
    value-set definitions. `key` is None for the case's own chunks, else it names a chunk of the
    knowledge base that is the same for every case (the compiled engine converts those once)."""
    yield None, case.graph
    closure = []
    for subject, cls in case.graph.subject_objects(RDF.type):
        for sup in kb.superclasses(cls):
            closure.append((subject, RDF.type, sup))
    yield None, closure
    for concept in {o for o in case.graph.objects() if isinstance(o, URIRef)}:
        if str(concept).startswith(CODE_BASE):
            yield ("concept", concept), kb.concept_description(concept)
    yield ("value-sets",), kb.value_set_triples


def build_case_graph(kb: KnowledgeBase, case: Case, checked: bool = False) -> CaseGraph:
    """Case triples + type closure + knowledge about the concepts used + rule inferences.

    The case is checked first (`reasoner/guard`): it states case facts only, within the size
    limits, with plausible values; so every triple the rules add is one they derived.
    `checked`: the caller has just run that check on this case (no second pass)."""
    if not checked:
        check_case(kb, case)
    data = PreparedQueryGraph()
    for _, triples in case_chunks(kb, case):
        for triple in triples:
            data.add(triple)
    inferred = Graph()
    for path, rule in kb.rules:
        try:
            constructed = data.query(rule).graph
        except Exception as exc:  # a rule that fails on data is a knowledge-base bug
            raise KnowledgeError(f"rule failed: {exc}", source=str(path)) from None
        for triple in constructed:
            if triple not in data:
                data.add(triple)
                inferred.add(triple)
    return CaseGraph(data, inferred)
