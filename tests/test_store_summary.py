"""The decision summary (reasoner/summary.py): written with every record in the same
transaction, added to records stored without one, kept in step by updates, out of a case's
reach; and every query of queries/ gives, from the summary, the answers the queries written
over the record graphs (bench/record-queries/) give on the decided corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from reasoner.errors import InputError
from reasoner.store import EmbeddedStore
from reasoner.summary import SUMMARY_FORMAT, SUMMARY_GRAPH, summary_ntriples
from reasoner.vocab import NR

from .conftest import ROOT
from .store_corpus import QUERIES

RECORD_QUERIES = ROOT / "bench" / "record-queries"
#: result columns that are GROUP_CONCATs (their order within a value is unspecified)
CONCATS = {"criteria", "verdicts", "sources"}


def normalised(rows: list[dict[str, str]]) -> Counter:
    return Counter(tuple(sorted((k, frozenset(v.split()) if k in CONCATS else v)
                                for k, v in row.items())) for row in rows)


def summary_graph(store) -> Graph:
    return store.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ ?s ?p ?o }} "
                       f"FILTER(?s != <{SUMMARY_GRAPH}>) }}").graph


def own_summary(store, iri: str) -> Graph:
    return store.query(f"CONSTRUCT {{ <{iri}> ?p ?o }} WHERE {{ GRAPH <{SUMMARY_GRAPH}> "
                       f"{{ <{iri}> ?p ?o }} }}").graph


def expected_own(iri: str, nt: str) -> Graph:
    out = Graph()
    for s, p, o in Graph().parse(data=summary_ntriples(iri, nt), format="nt"):
        if str(s) == iri:
            out.add((s, p, o))
    return out


def test_every_query_has_its_record_graph_counterpart():
    assert sorted(p.name for p in QUERIES.glob("*.rq")) == sorted(
        p.name for p in RECORD_QUERIES.glob("*.rq"))
    assert len(list(QUERIES.glob("*.rq"))) == 10


@pytest.mark.parametrize("name", sorted(p.name for p in QUERIES.glob("*.rq")))
def test_summary_query_answers_as_the_record_query(corpus, name):
    """Same rows (as a multiset; GROUP_CONCAT values as sets) from the summary as from the
    records, on the corpus store."""
    assert corpus.decided and not corpus.errors
    new = corpus.store.select_rows((QUERIES / name).read_text(encoding="utf-8"), source=name)
    old = corpus.store.select_rows((RECORD_QUERIES / name).read_text(encoding="utf-8"),
                                   source=name)
    assert normalised(new) == normalised(old)


def test_the_corpus_store_has_one_summary_per_record(corpus):
    records = set(corpus.store.records())
    summarised = {row["d"] for row in corpus.store.select_rows(
        f"SELECT ?d WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ ?d <{NR}decisionProfile> ?p }} }}")}
    assert records == summarised == {d.iri for d in corpus.decided}
    for d in corpus.decided[:5]:
        assert isomorphic(own_summary(corpus.store, d.iri),
                          expected_own(d.iri, d.record.serialize(format="nt")))


# ---------------------------------------------------------------------- writing and replacing

@pytest.fixture()
def two_records(corpus):
    """Two corpus records with different outcomes (N-Triples), for a scratch store."""
    by_outcome = {}
    for d in corpus.decided:
        by_outcome.setdefault(d.record_outcome, d)
    a, b = list(by_outcome.values())[:2]
    return [(a.iri, a.record.serialize(format="nt")), (b.iri, b.record.serialize(format="nt"))]


def test_put_writes_the_summary_and_replacing_a_record_replaces_it(tmp_path, two_records):
    (iri, nt), (_, other) = two_records
    store = EmbeddedStore(str(tmp_path / "s"))
    store.put(iri, nt)
    assert isomorphic(own_summary(store, iri), expected_own(iri, nt))
    # the same IRI stored again with another record's content: its summary follows, no leftovers
    other_id = other.split("/determination/", 1)[1].split("/", 1)[0]
    this_id = iri.split("/determination/", 1)[1].split("/", 1)[0]
    moved = other.replace(f"/determination/{other_id}/", f"/determination/{this_id}/")
    moved = moved.replace(two_records[1][0].replace(other_id, this_id), iri)
    store.put(iri, moved)
    assert isomorphic(own_summary(store, iri), expected_own(iri, moved))
    assert not isomorphic(own_summary(store, iri), expected_own(iri, nt))
    store.close()


def test_record_and_summary_are_one_transaction(tmp_path, two_records):
    """A summary the store cannot take fails the whole write: no record without summary."""
    (iri, nt), _ = two_records
    store = EmbeddedStore(str(tmp_path / "s"))
    with pytest.raises(Exception):
        store.put_ntriples(iri, nt, "<not an ntriples line")
    assert store.records() == []
    assert len(summary_graph(store)) == 0
    store.close()


def test_put_many_writes_every_summary(tmp_path, two_records):
    store = EmbeddedStore(str(tmp_path / "s"))
    store.put_many(two_records)
    for iri, nt in two_records:
        assert isomorphic(own_summary(store, iri), expected_own(iri, nt))
    store.close()


# ---------------------------------------------------------------------- records without summary

def test_records_stored_without_summary_are_summarised_before_queries(tmp_path, corpus):
    """A store written before summaries existed (records only): `ensure_kb`, which
    `reasoner query --store` and `reasoner serve` run first, adds every summary; the queries
    then answer as on a store written with summaries."""
    store = EmbeddedStore(str(tmp_path / "old"))
    records = corpus.records_nt()
    for iri, nt in records.items():  # the pre-summary write: the record graph only
        store.raw_update(f"INSERT DATA {{ GRAPH <{iri}> {{\n{nt}\n}} }}")
    assert len(summary_graph(store)) == 0
    store.ensure_kb(ROOT)
    assert isomorphic(summary_graph(store), summary_graph(corpus.store))
    assert store.ensure_summaries() == 0  # nothing left to do: two counts and the marker
    name = "top-unmet-criteria.rq"
    assert store.select_rows((QUERIES / name).read_text()) == corpus.store.select_rows(
        (QUERIES / name).read_text())
    store.close()


def test_a_summary_of_another_format_is_rederived(tmp_path, two_records):
    store = EmbeddedStore(str(tmp_path / "s"))
    store.put_many(two_records)
    store.ensure_summaries()
    iri = two_records[0][0]
    store.raw_update(f"DELETE WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ <{iri}> ?p ?o }} }} ;"
                     f"DELETE WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ <{SUMMARY_GRAPH}> ?p ?o }} }} ;"
                     f"INSERT DATA {{ GRAPH <{SUMMARY_GRAPH}> {{ <{SUMMARY_GRAPH}> "
                     f"<{NR}summaryFormat> \"0\" }} }}")
    assert store.ensure_summaries() == 2
    assert isomorphic(own_summary(store, iri), expected_own(*two_records[0]))
    assert store.select_rows(f"SELECT ?f WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ <{SUMMARY_GRAPH}> "
                             f"<{NR}summaryFormat> ?f }} }}") == [{"f": SUMMARY_FORMAT}]
    store.close()


def test_updates_keep_the_summary_in_step(tmp_path, two_records):
    """A SPARQL update through the store that changes a record in place, or drops one, moves
    its summary with it."""
    store = EmbeddedStore(str(tmp_path / "s"))
    store.put_many(two_records)
    (iri, nt), (gone, _) = two_records
    outcome = Graph().parse(data=nt, format="nt").value(URIRef_(iri), NR.outcome)
    assert outcome is not None
    new = NR.Pended if outcome != NR.Pended else NR.Denied
    store.update(f"DELETE {{ GRAPH <{iri}> {{ <{iri}> nr:outcome ?o }} }} "
                 f"INSERT {{ GRAPH <{iri}> {{ <{iri}> nr:outcome <{new}> }} }} "
                 f"WHERE {{ GRAPH <{iri}> {{ <{iri}> nr:outcome ?o }} }}")
    changed = nt.replace(f"<{NR.outcome}> <{outcome}>", f"<{NR.outcome}> <{new}>")
    assert isomorphic(own_summary(store, iri), expected_own(iri, changed))
    store.update(f"DROP GRAPH <{gone}>")
    assert len(own_summary(store, gone)) == 0
    # an update over every graph (GRAPH ?g) re-derives every summary
    store.update(f"DELETE {{ GRAPH ?g {{ ?g nr:outcome ?o }} }} INSERT {{ GRAPH ?g {{ ?g nr:outcome <{outcome}> }} }} "
                 f"WHERE {{ GRAPH ?g {{ ?g nr:outcome ?o }} }}")
    assert isomorphic(own_summary(store, iri), expected_own(iri, nt))
    store.close()


# ---------------------------------------------------------------------- out of a case's reach

def summary_terms() -> set:
    text = (ROOT / "ontology" / "policy.ttl").read_text(encoding="utf-8")
    block = text.split("# ---------------------------------------------------------------- decision summaries")[1]
    block = block.split("# ----------------------------------------------------------------")[0]
    g = Graph().parse(data=(text.split("# ---")[0] + block), format="turtle")
    from rdflib.namespace import OWL, RDF

    return {s for t in (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.Class)
            for s in g.subjects(RDF.type, t)}


def test_summary_terms_are_reserved(reasoner):
    """Declared in the record module (ontology/policy.ttl), the summary's terms are record terms
    the case guard refuses (reasoner/guard/terms.py derives them from the ontology)."""
    from reasoner.guard import guard_for

    terms = guard_for(reasoner.kb).terms
    declared = summary_terms()
    assert NR.decisionProfile in declared and NR.DecisionProfile in declared
    assert len(declared) == 23
    for term in declared:
        assert term in terms.record or term in terms.classes, term


def test_a_case_stating_a_summary_term_is_refused(tmp_path):
    from .test_guard import hostile, refused

    path = hostile.appended(tmp_path, "forged-summary",
                            f"<{hostile.SEED_DETERMINATION}> nr:caseId \"x\" .\n"
                            ":case nr:decisionProfile :case .")
    refused(path, "determination")


def test_case_facts_cannot_reach_the_summary(two_records):
    """The summary reads only the reasoner's own nodes (and the request's code, dates and reason
    diagnoses): a case fact describing a profile node, or using the summary's terms on its own
    nodes, leaves it unchanged."""
    iri, nt = two_records[0]
    case = Graph().parse(data=nt, format="nt").value(URIRef_(iri), NR.forCase)
    forged = nt + (f"<{case}> <{NR.decisionProfile}> <https://w3id.org/necessity/summary/profile/x> .\n"
                   f"<https://w3id.org/necessity/summary/profile/x> <{NR.profileOutcome}> <{NR.Approved}> .\n"
                   f"<{case}> <{NR.outcome}> <{NR.Approved}> .\n")
    assert summary_ntriples(iri, forged) == summary_ntriples(iri, nt)


def URIRef_(value: str):
    from rdflib import URIRef

    return URIRef(value)


def test_no_summary_for_a_graph_without_a_determination():
    assert summary_ntriples("https://example.org/d", "<https://example.org/a> "
                            "<https://example.org/b> \"c\" .\n") == ""


def test_a_store_write_error_is_one_line(tmp_path, two_records):
    store = EmbeddedStore(str(tmp_path / "s"))
    with pytest.raises(InputError):
        store.update("INSERT DATA { GRAPH <x> { bad")
    store.close()


def test_record_queries_are_documented():
    text = (RECORD_QUERIES / "README.md").read_text(encoding="utf-8")
    assert "queries/" in text and Path(__file__).name in text


def test_a_record_with_a_literal_where_an_iri_belongs_is_still_summarised(two_records):
    """A record edited by hand (e.g. a script payload as its outcome) gets a summary without
    that value, rather than a failing write or no summary at all."""
    iri, nt = two_records[0]
    outcome = Graph().parse(data=nt, format="nt").value(URIRef_(iri), NR.outcome)
    hostile = nt.replace(f"<{NR.outcome}> <{outcome}>", f"<{NR.outcome}> \"<script>x</script>\"")
    text = summary_ntriples(iri, hostile)
    assert f"<{iri}> <{NR.decisionProfile}>" in text and "script" not in text
    Graph().parse(data=text, format="nt")  # valid N-Triples
