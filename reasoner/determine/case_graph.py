"""Step 1: the per-case graph pySHACL validates (docs/architecture.md, "The per-case graph")."""

from __future__ import annotations

from dataclasses import dataclass

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
    """The per-case graph pySHACL validates, and the part of it that rules inferred."""

    data: Graph
    inferred: Graph


def build_case_graph(kb: KnowledgeBase, case: Case, checked: bool = False) -> CaseGraph:
    """Case triples + type closure + knowledge about the concepts used + rule inferences.

    The case is checked first (`reasoner/guard`): it states case facts only, within the size
    limits, with plausible values; so every triple the rules add is one they derived.
    `checked`: the caller has just run that check on this case (no second pass)."""
    if not checked:
        check_case(kb, case)
    data = PreparedQueryGraph()
    for triple in case.graph:
        data.add(triple)
    for subject, cls in case.graph.subject_objects(RDF.type):
        for sup in kb.superclasses(cls):
            data.add((subject, RDF.type, sup))
    for concept in {o for o in case.graph.objects() if isinstance(o, URIRef)}:
        if str(concept).startswith(CODE_BASE):
            for triple in kb.concept_description(concept):
                data.add(triple)
    for triple in kb.value_set_triples:
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
