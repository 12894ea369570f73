"""The decision store (issue 5): a batch over cases/ into a fresh store, then every
queries/*.rq gives the answers computed from the cases' expected.json files; the same against a
real `oxigraph serve` on loopback; re-deciding replaces; records carry file hashes; a batch killed
with SIGKILL or SIGINT leaves no lost and no partial record.

Expected answers come from expected.json. While the corpus and packs are being written, a case
the engine does not yet decide as its expected.json says is reported by
`test_batch_decides_every_case_as_expected` and, for the query tests, counted as the engine
decided it (the record), so that a query test fails only for a store or query fault.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from rdflib.namespace import PROV, RDFS

from reasoner.batch import run_batch
from reasoner.case import collect_cases
from reasoner.kb import file_hash
from reasoner.store import EmbeddedStore
from reasoner.vocab import NR

from .conftest import CASES, ROOT
from .store_corpus import expectations, free_port

# ---------------------------------------------------------------------- the batch itself

def test_batch_collects_every_case_folder(corpus):
    on_disk = {p.parent for n in ("case.ttl", "bundle.json") for p in CASES.glob(f"*/{n}")}
    assert set(collect_cases([CASES])) == on_disk
    exp = expectations()
    assert corpus.collected == {p: len(exp[p]) for p in exp if p in corpus.reasoner.kb.packs}
    assert corpus.collected.get("lcd-l39240", 0) >= 1
    assert len(corpus.decided) + len(corpus.errors) == sum(corpus.collected.values())


def test_batch_decides_every_case_as_expected(corpus):
    """The corpus through the batch matches expected.json (names the cases that do not)."""
    wrong = [f"{d.case_dir.name} [{d.policy}]: {d.record_outcome}, expected "
             f"{d.expected['outcome']}; " + ", ".join(
                 f"{ref} {d.record_verdicts.get(ref)} != {s}"
                 for ref, s in d.expected["criteria"].items() if d.record_verdicts.get(ref) != s)
             for d in corpus.decided if not d.agrees]
    assert not corpus.errors, f"{len(corpus.errors)} case(s) failed: {corpus.errors[:5]}"
    assert not wrong, f"{len(wrong)} of {len(corpus.decided)} cases differ:\n" + "\n".join(wrong)


def test_store_holds_one_named_graph_per_decision(corpus):
    assert sorted(corpus.store.records()) == sorted(d.iri for d in corpus.decided)
    rows = corpus.store.select_rows(
        "SELECT ?g (COUNT(?d) AS ?n) WHERE { GRAPH ?g { ?d a nr:Determination } } GROUP BY ?g")
    assert all(r["n"] == "1" and r["g"] for r in rows) and len(rows) == len(corpus.decided)


def test_record_holds_the_hash_of_every_file_used(corpus):
    from reasoner import batch

    # the knowledge base the batch decided with (files may change while the suite runs)
    kb_hashes = batch._WORKER["reasoner"].kb.file_hashes
    d = corpus.decided[0]
    activity = d.record.value(d.node, PROV.wasGeneratedBy)
    stored = {str(d.record.value(u, RDFS.label)): str(d.record.value(u, NR.contentHash))
              for u in d.record.objects(activity, PROV.used) if d.record.value(u, NR.contentHash)}
    assert set(stored) == set(kb_hashes)
    assert any(p.startswith("shapes/") for p in stored) and any(p.startswith("ontology/") for p in stored)
    for path, digest in stored.items():
        assert digest == f"sha256:{kb_hashes[path]}"
    # and the same in the store, by SPARQL
    rows = corpus.store.select_rows(f"""SELECT (COUNT(DISTINCT ?f) AS ?n) WHERE {{ GRAPH <{d.iri}> {{
        <{d.iri}> prov:wasGeneratedBy/prov:used ?f . ?f nr:contentHash ?h }} }}""")
    assert int(rows[0]["n"]) == len(kb_hashes)
    assert all((ROOT / path).is_file() for path in stored)
    assert all(len(h) == len("sha256:") + 64 for h in stored.values())
    assert file_hash(ROOT / sorted(stored)[0])  # the same function that hashed them


def test_deciding_again_replaces_the_record(corpus, tmp_path):
    store = corpus.store
    d = corpus.decided[0]
    before = len(store.records())
    triples_before = store.select_rows(
        f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{d.iri}> {{ ?s ?p ?o }} }}")[0]["n"]
    summary = run_batch([d.case_dir], d.policy, store, workers=1, root=ROOT)
    assert summary.written == 1
    assert len(store.records()) == before
    rows = store.select_rows(f"""SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{d.iri}> {{ ?s ?p ?o }} }}""")
    assert rows[0]["n"] == triples_before
    results = store.select_rows(f"""SELECT (COUNT(?r) AS ?n) WHERE {{ GRAPH <{d.iri}> {{
        <{d.iri}> nr:hasCriterionResult ?r }} }}""")
    assert int(results[0]["n"]) == len(d.record_verdicts)
    # the CLI path does the same
    from click.testing import CliRunner

    from reasoner.cli import main

    store.close()
    try:
        result = CliRunner().invoke(main, ["determine", str(d.case_dir), "--policy", d.policy,
                                           "--format", "json", "--store", store.location])
        assert result.exit_code == 0, result.output
    finally:
        corpus.store = EmbeddedStore(store.location)
    assert len(corpus.store.records()) == before


# ---------------------------------------------------------------------- the analysts' queries


def test_unreachable_endpoint_is_a_one_line_input_error():
    exe = Path(sys.executable).parent / "reasoner"
    result = subprocess.run([str(exe), "query", "SELECT * WHERE { ?s ?p ?o } LIMIT 1", "--store",
                             f"http://127.0.0.1:{free_port()}/query"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------- killed mid-batch

def _kill_mid_batch(tmp_path, sig, after=3):
    store_dir = tmp_path / f"store-{sig}"
    exe = Path(sys.executable).parent / "reasoner"
    # small blocks: records are committed a few at a time, so the kill lands mid-batch (with
    # the default, each worker's one block of half the corpus would be stored at once)
    proc = subprocess.Popen([str(exe), "batch", str(CASES), "--policy", "lcd-l39240", "--store",
                             str(store_dir), "--workers", "2", "--block-size", "2", "--verbose",
                             "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    stored = []
    try:
        for line in proc.stderr:
            if line.startswith("stored "):
                stored.append(line.split()[1])
                if len(stored) >= after:
                    break
        os.killpg(proc.pid, sig)  # the whole group, as Ctrl-C in a terminal or a machine kill
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc, stored, store_dir


def _assert_every_record_complete(store_dir, reasoner, stored):
    import pyoxigraph as ox

    store = EmbeddedStore(str(store_dir))
    try:
        graphs = [g.value for g in store.store.named_graphs()]
        assert set(stored) <= set(graphs), "a record reported stored is lost"
        kb = reasoner.kb  # built from the same files as the killed batch's
        n_files = len(kb.file_hashes)
        pack = kb.pack("lcd-l39240")
        records = set(store.records())
        # every record has its summary, written in the same transaction, and nothing else does
        from rdflib import Graph
        from rdflib.compare import isomorphic

        from reasoner.summary import SUMMARY_GRAPH, summary_ntriples

        graphs = [g for g in graphs if g != SUMMARY_GRAPH]
        summarised = {row["d"] for row in store.select_rows(
            f"SELECT ?d WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ ?d nr:decisionProfile ?p }} }}")}
        assert summarised == records
        for g in graphs:
            assert g in records, f"{g}: a named graph that is not a whole record"
            own = store.query(f"CONSTRUCT {{ <{g}> ?p ?o }} WHERE {{ GRAPH <{SUMMARY_GRAPH}> "
                              f"{{ <{g}> ?p ?o }} }}").graph
            want = Graph().parse(data=summary_ntriples(g, store.record_ntriples(g)), format="nt")
            mine = Graph()
            for triple in want.triples((own_subject(g), None, None)):
                mine.add(triple)
            assert len(mine) >= 3 and isomorphic(own, mine), g
            rows = store.select_rows(f"""SELECT
                (COUNT(DISTINCT ?r) AS ?results) (COUNT(DISTINCT ?verdicted) AS ?verdicts)
                (COUNT(DISTINCT ?f) AS ?files) (COUNT(DISTINCT ?o) AS ?outcomes)
                WHERE {{ GRAPH <{g}> {{
                  {{ <{g}> nr:hasCriterionResult ?r . OPTIONAL {{ ?r nr:verdict ?v BIND(?r AS ?verdicted) }} }}
                  UNION {{ <{g}> prov:wasGeneratedBy/prov:used ?f . ?f nr:contentHash ?h }}
                  UNION {{ <{g}> nr:outcome ?o }} }} }}""")[0]
            version_iri = store.select_rows(
                f"SELECT ?v WHERE {{ GRAPH <{g}> {{ <{g}> nr:underPolicyVersion ?v }} }}")[0]["v"]
            version = next(v for v in pack.versions if str(v.iri) == version_iri)
            assert int(rows["outcomes"]) == 1, g
            assert int(rows["results"]) == int(rows["verdicts"]) == len(version.criteria), g
            assert int(rows["files"]) == n_files, g
        assert isinstance(store.store, ox.Store)
        return graphs
    finally:
        store.close()


def own_subject(iri: str):
    from rdflib import URIRef

    return URIRef(iri)


def test_sigkill_mid_batch_leaves_no_lost_and_no_partial_record(tmp_path, reasoner):
    proc, stored, store_dir = _kill_mid_batch(tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert len(stored) >= 3
    graphs = _assert_every_record_complete(store_dir, reasoner, stored)
    assert len(graphs) < len(collect_cases([CASES])), "the batch was not interrupted"


def test_ctrl_c_mid_batch_stops_cleanly_with_whole_records(tmp_path, reasoner):
    proc, stored, store_dir = _kill_mid_batch(tmp_path, signal.SIGINT)
    out = proc.stdout.read()
    assert proc.returncode == 130, out
    assert "interrupted" in out
    graphs = _assert_every_record_complete(store_dir, reasoner, stored)
    assert len(graphs) >= len(stored)


def test_unknown_policy_is_exit_2_before_anything_is_written(tmp_path):
    exe = Path(sys.executable).parent / "reasoner"
    result = subprocess.run([str(exe), "batch", str(CASES), "--policy", "no-such-policy",
                             "--store", str(tmp_path / "s")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "unknown policy" in result.stderr
    assert "Traceback" not in result.stderr

