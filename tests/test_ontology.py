"""OWL checks of the ontology modules (ontology/*.ttl) through the owlready2/HermiT adapter.

HermiT costs about a second per call (JVM start, engineering notes): three calls in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from reasoner.engines import owl

ROOT = Path(__file__).resolve().parent.parent
NR = Namespace("https://w3id.org/necessity/ontology#")
TEST = Namespace("https://w3id.org/necessity/test/")
MODULES = owl.ontology_paths(ROOT)
XSD_DATE = URIRef("http://www.w3.org/2001/XMLSchema#date")


@pytest.fixture(scope="module")
def merged() -> Graph:
    return owl.merge_modules(MODULES)


def _hermit(graph: Graph) -> owl.ReasonerResult:
    result = owl.run_hermit(graph)
    if result.status == owl.JAVA_UNAVAILABLE:
        pytest.skip(f"HermiT needs Java: {result.message}")
    assert result.status != owl.ERROR, result.message
    return result


def test_modules_collected():
    names = {p.name for p in MODULES}
    assert {"case.ttl", "policy.ttl", "evidence.ttl", "terminology.ttl"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_header(path: Path):
    graph = Graph().parse(path, format="turtle")
    headers = list(graph.subjects(RDF.type, OWL.Ontology))
    assert len(headers) == 1, "one owl:Ontology per module"
    version = graph.value(headers[0], OWL.versionIRI)
    assert version is not None and str(version).startswith(str(headers[0]) + "/")
    assert graph.value(headers[0], OWL.versionInfo) is not None


def test_no_date_ranges(merged: Graph):
    """HermiT refuses xsd:date, outside the OWL 2 datatype map (engineering notes)."""
    assert not list(merged.subjects(RDFS.range, XSD_DATE))


def test_terminology_terms_are_documented():
    graph = Graph().parse(ROOT / "ontology" / "terminology.ttl", format="turtle")
    kinds = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)
    terms = {s for k in kinds for s in graph.subjects(RDF.type, k)}
    assert NR.ValueSet in terms and NR.sideMember in terms
    for term in terms:
        assert graph.value(term, RDFS.label) is not None, term
        assert (graph.value(term, SKOS.definition) or graph.value(term, RDFS.comment)), term


def test_owlready2_round_trip(merged: Graph):
    result = owl.round_trip(merged)
    assert result.ok, result


def test_ontology_is_consistent_and_satisfiable(merged: Graph):
    result = _hermit(merged)
    assert result.status == owl.CONSISTENT, result.message
    assert result.unsatisfiable == (), result.unsatisfiable


def test_injected_contradiction_is_inconsistent(merged: Graph):
    """Disjoint classes plus an individual of both: no model (OWL 2 Direct Semantics)."""
    graph = Graph() + merged
    graph.add((NR.Patient, OWL.disjointWith, NR.SourceDocument))
    graph.add((TEST.both, RDF.type, OWL.NamedIndividual))
    graph.add((TEST.both, RDF.type, NR.Patient))
    graph.add((TEST.both, RDF.type, NR.SourceDocument))
    result = _hermit(graph)
    assert result.status == owl.INCONSISTENT and result.consistent is False, result


def test_injected_unsatisfiable_class_is_reported(merged: Graph):
    """A subclass of two disjoint classes is unsatisfiable, the ontology still consistent."""
    graph = Graph() + merged
    graph.add((NR.Patient, OWL.disjointWith, NR.SourceDocument))
    graph.add((TEST.Impossible, RDF.type, OWL.Class))
    graph.add((TEST.Impossible, RDFS.subClassOf, NR.Patient))
    graph.add((TEST.Impossible, RDFS.subClassOf, NR.SourceDocument))
    result = _hermit(graph)
    assert result.status == owl.CONSISTENT
    assert result.unsatisfiable == (str(TEST.Impossible),)
