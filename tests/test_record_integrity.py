"""The decision record is the reasoner's (issue 12, "The record is the reasoner's"): the case
facts in a record never add to or overwrite the determination, its criterion results or any
other node the reasoner wrote; a forged outcome cannot reach a record or a store query."""

from __future__ import annotations

import importlib.util

import pytest
from rdflib import Graph, URIRef
from rdflib.compare import to_isomorphic

from reasoner.errors import InputError
from reasoner.render.rdf import determination_graph
from reasoner.vocab import NR

from .conftest import CASES, ROOT

_spec = importlib.util.spec_from_file_location(
    "hostile", ROOT / "tests" / "fixtures" / "hostile" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

SEED = CASES / "seed-l5-snrb"


@pytest.fixture(scope="module")
def seed(reasoner):
    case = reasoner.load_case(SEED)
    return case, reasoner.determine(case, "lcd-l39240")


def test_the_record_is_the_determination_plus_the_case_facts(reasoner, seed):
    case, d = seed
    assert d.iri == hostile.SEED_DETERMINATION
    record = reasoner.record_graph(d, case)
    own = determination_graph(d, None, reasoner.kb.file_hashes)
    # nothing else: the reasoner's part and the case's part, and they share no subject
    assert to_isomorphic(record) == to_isomorphic(own + case.graph)
    assert not ({s for s in own.subjects()} - {URIRef(d.case)}) & set(case.graph.subjects())
    det = URIRef(d.iri)
    assert set(record.objects(det, NR.outcome)) == {NR.Denied}
    assert len(set(record.objects(det, NR.clinicianReviewRequired))) == 1


def test_case_facts_cannot_add_to_the_determination_in_a_record(reasoner, seed):
    """Even a case graph that bypassed the loader (built in code) cannot write to the record's
    determination: the record refuses it instead of holding two outcomes."""
    case, d = seed
    forged = Graph()
    forged += case.graph
    forged.add((URIRef(d.iri), NR.outcome, NR.Approved))
    with pytest.raises(InputError, match="determination"):
        determination_graph(d, forged, reasoner.kb.file_hashes)
    forged = Graph()
    forged += case.graph
    forged.add((URIRef(d.iri + "#ESI-CI-1a"), NR.verdict, NR.Met))
    with pytest.raises(InputError, match="determination"):
        determination_graph(d, forged, reasoner.kb.file_hashes)


def test_a_forged_outcome_is_refused_before_it_is_decided(reasoner, tmp_path):
    """The issue's forgery: a case stating its own determination approved is refused before
    it is decided, so no record (and no store query) can count it approved."""
    path = hostile.appended(tmp_path, "seed-l5-snrb",
                            f"<{hostile.SEED_DETERMINATION}> nr:outcome nr:Approved ; "
                            f"nr:clinicianReviewRequired false .")
    with pytest.raises(InputError, match="determination"):
        reasoner.determine(path, "lcd-l39240")


def test_inferred_facts_are_only_rule_conclusions(reasoner, seed):
    """Every fact the seed's determination marks as reached by inference rests on a triple the
    rules derived, never on one the case asserted (the case may not assert them)."""
    from reasoner.determine import build_case_graph

    case, d = seed
    cg = build_case_graph(reasoner.kb, case)
    assert len(cg.inferred) > 0
    assert not set(cg.inferred) & set(case.graph)
    from rdflib.namespace import RDF

    inferred_predicates = {p for _, p, _ in cg.inferred} - {RDF.type}
    assert inferred_predicates and not inferred_predicates & {p for _, p, _ in case.graph}
    inferred_classes = {o for _, p, o in cg.inferred if p == RDF.type}
    assert not inferred_classes & set(case.graph.objects(None, RDF.type))
