"""The analysts' queries (queries/*.rq) on the decided corpus: each gives the answers computed
from the cases' expected.json, on the embedded store and on a real `oxigraph serve` on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from rdflib import Graph

from reasoner.store import EmbeddedStore, RemoteStore
from reasoner.vocab import NR

from .conftest import ROOT
from .store_corpus import MINI, QUERIES, Decided, free_port, rows_of


def check_outcomes(rows, corpus):
    versions = {p["iri"]: p["version"] for p in corpus.reasoner.policies()}
    want = Counter((d.policy, versions[str(d.version)],
                    d.service_date.isoformat()[:7] if d.service_date else "no date", d.outcome)
                   for d in corpus.decided)
    got = {(r["policyId"], r["version"], r["month"], r["outcome"]): int(r["decisions"]) for r in rows}
    assert got == dict(want)


def _top(rows, corpus, status, column):
    want = Counter((d.policy, ref) for d in corpus.decided
                   for ref, s in d.verdicts.items() if s == status)
    got = {(r["policyId"], r["ref"]): int(r[column]) for r in rows}
    assert got == dict(want)
    counts = [int(r[column]) for r in rows]
    assert counts == sorted(counts, reverse=True)


def check_top_unmet(rows, corpus):
    _top(rows, corpus, "unmet", "unmet")
    per_policy = Counter(d.policy for d in corpus.decided)
    assert all(int(r["decisions"]) == per_policy[r["policyId"]] for r in rows)
    assert rows, "the corpus denies at least once"


def check_top_missing(rows, corpus):
    _top(rows, corpus, "missing", "missing")


def check_pend_reasons(rows, corpus):
    want = Counter((d.policy, ref) for d in corpus.decided if d.outcome == "pended"
                   for ref, s in d.verdicts.items() if s == "missing")
    by_ref = defaultdict(list)
    for r in rows:
        by_ref[(r["policyId"], r["ref"])].append(int(r["pended"]))
        assert r["requested"]
    assert set(by_ref) == set(want)
    for key, counts in by_ref.items():
        assert max(counts) <= want[key] <= sum(counts), key
    if any(d.outcome == "pended" for d in corpus.decided):
        assert rows


def check_evidence_cited_by_approvals(rows, corpus):
    want = Counter()
    for d in corpus.decided:
        if d.outcome != "approved":
            continue
        pack = corpus.reasoner.kb.pack(d.policy)
        version = next(v for v in pack.versions if v.iri == d.version)
        statements = {str(e) for c in version.criteria
                      for e in pack.graph.objects(c, NR.supportingEvidence)}
        want.update(statements)
    got = Counter()
    for r in rows:
        got[r["statement"]] += int(r["approvals"])
    assert got == want
    for r in rows:  # each statement comes with its label from the knowledge graph
        assert r.get("label"), r["statement"]


DECISIVE = {"approved": NR.Met, "denied": NR.Unmet, "pended": NR.Missing}


def _on_inference(d) -> tuple[set[str], set]:
    """(reference ids of the decisive criteria resting on inferred facts, those facts)."""
    g, refs, facts = d.record, set(), set()
    for res in g.objects(d.node, NR.hasCriterionResult):
        inferred = set(g.objects(res, NR.decidedByInference))
        if inferred and g.value(res, NR.verdict) == DECISIVE[d.record_outcome]:
            refs.add(str(g.value(res, NR.referenceId)))
            facts |= inferred
    return refs, facts


def check_inferred(rows, corpus):
    versions = {p["iri"]: p["version"] for p in corpus.reasoner.policies()}
    want = Counter()
    for d in corpus.decided:
        key = (d.policy, versions[str(d.version)])
        refs, _ = _on_inference(d)
        for ref in refs:
            want[key + (ref, d.record_outcome)] += 1
    got = Counter()
    for r in rows:
        key = (r["policyId"], r["version"])
        assert int(r["decisions"]) == sum(int(r[o]) for o in ("approved", "denied", "pended"))
        for outcome in ("approved", "denied", "pended"):
            if int(r[outcome]):
                got[key + (r["ref"], outcome)] = int(r[outcome])
    assert got == want and want, "the corpus has decisions resting on inferred facts"


def check_inferred_list(rows, corpus):
    """The default month (the latest among decisions resting on inferred facts), every
    criterion; the same query with a month and a criterion chosen is checked below."""
    chosen = {d.iri: d for d in corpus.decided if _on_inference(d)[0] and d.service_date}
    latest = max(d.service_date.isoformat()[:7] for d in chosen.values())
    assert {r["d"] for r in rows} == {i for i, d in chosen.items()
                                      if d.service_date.isoformat()[:7] == latest}
    for r in rows:
        d = chosen[r["d"]]
        refs, facts = _on_inference(d)
        assert (r["caseId"], r["serviceDate"], r["outcome"]) == (
            d.iri.split("/determination/")[1].split("/")[0], d.service_date.isoformat(),
            d.record_outcome)
        assert (set(r["criteria"].split()), int(r["inferredFacts"])) == (refs, len(facts))
    assert [r["serviceDate"] for r in rows] == sorted(r["serviceDate"] for r in rows)


def test_inferred_list_for_a_chosen_month_and_criterion(corpus):
    text = (QUERIES / "decisions-on-inferred-facts-list.rq").read_text(encoding="utf-8")
    picks = Counter((d.service_date.isoformat()[:7], ref) for d in corpus.decided
                    if d.service_date for ref in _on_inference(d)[0])
    (month, ref), count = sorted(picks.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    assert text.count("VALUES ?chosenMonth { UNDEF }") == 1
    assert text.count("VALUES ?chosenRef { UNDEF }") == 1
    text = text.replace("VALUES ?chosenMonth { UNDEF }", f'VALUES ?chosenMonth {{ "{month}" }}')
    text = text.replace("VALUES ?chosenRef { UNDEF }", f'VALUES ?chosenRef {{ "{ref}" }}')
    rows = corpus.store.select_rows(text)
    assert len(rows) == count
    assert all(ref in r["criteria"].split() and r["serviceDate"][:7] == month for r in rows)


def superseded_expected(decisions, versions_by_policy) -> set[tuple[str, str, str]]:
    """(determination, reason, newer version or '') by the definition in the query's comment.
    decisions: (iri, policy id, version IRI, service date); versions_by_policy: policy id ->
    [(version IRI, effective_from, effective_until)]."""
    out = set()
    for iri, policy, version, day in decisions:
        versions = versions_by_policy[policy]
        _, start, until = next(v for v in versions if v[0] == version)
        newer = [(v, f) for v, f, _ in versions if v != version and f and start and f > start]
        for newer_iri, newer_from in newer or [(None, None)]:
            if until and until < day:
                reason = "expired"
            elif newer_iri and newer_from <= day:
                reason = "replaced"
            elif newer_iri:
                reason = "not-newest"
            else:
                continue
            out.add((iri, reason, newer_iri or ""))
    return out


def _versions(kb) -> dict:
    return {pid: [(str(v.iri), v.effective_from, v.effective_until) for v in pack.versions]
            for pid, pack in kb.packs.items()}


def check_superseded(rows, corpus):
    decisions = [(d.iri, d.policy, str(d.version), d.service_date) for d in corpus.decided]
    want = superseded_expected(decisions, _versions(corpus.reasoner.kb))
    got = {(r["d"], r["reason"], r.get("newerVersion", "")) for r in rows}
    assert got == want


def _pain_days(d: Decided) -> int | None:
    g, day = d.record, d.service_date
    case = g.value(d.node, NR.forCase)
    onsets = [date.fromisoformat(str(o)) for req in g.objects(case, NR.indexRequest)
              for dx in g.objects(req, NR.reasonDiagnosis) for o in g.objects(dx, NR.onsetDate)]
    onsets = [o for o in onsets if day and o <= day]
    return (day - min(onsets)).days if onsets else None


def check_near_threshold(rows, corpus):
    want = {}
    for d in corpus.decided:
        days = _pain_days(d)
        if days is not None and 28 <= days < 35:
            want[d.iri] = "just-above"
        elif days is not None and 21 <= days < 28:
            want[d.iri] = "just-below"
    got = {r["d"]: r["band"] for r in rows}
    assert got == want
    by_name = {d.case_dir.name: d.iri for d in corpus.decided if d.policy == "lcd-l39240"}
    for name, band in (("fhir-approved-pain-exactly-28-days", "just-above"),
                       ("fhir-denied-pain-27-days", "just-below")):
        if name in by_name:
            assert got.get(by_name[name]) == band, name


def check_never_met(rows, corpus):
    by_version = defaultdict(list)
    for d in corpus.decided:
        by_version[(d.policy, str(d.version))].append(d)
    want = {}
    for (policy, version_iri), decided in by_version.items():
        pack = corpus.reasoner.kb.pack(policy)
        version = next(v for v in pack.versions if str(v.iri) == version_iri)
        for criterion in version.criteria:
            ref = str(pack.graph.value(criterion, NR.referenceId))
            verdicts = {d.verdicts.get(ref) for d in decided}
            if "met" not in verdicts:
                key = (policy, ref, len(decided))
                want[key] = want.get(key, set()) | verdicts
    got = {(r["policyId"], r["ref"], int(r["decisions"])): set(r["verdicts"].split()) for r in rows}
    assert got == want


CHECKS = {
    "outcomes-by-policy-and-month.rq": check_outcomes,
    "top-unmet-criteria.rq": check_top_unmet,
    "top-missing-criteria.rq": check_top_missing,
    "pend-reasons.rq": check_pend_reasons,
    "evidence-cited-by-approvals.rq": check_evidence_cited_by_approvals,
    "decisions-on-inferred-facts.rq": check_inferred,
    "decisions-on-inferred-facts-list.rq": check_inferred_list,
    "superseded-policy-version.rq": check_superseded,
    "near-threshold-pain-duration.rq": check_near_threshold,
    "criteria-never-met.rq": check_never_met,
}


def test_every_query_file_is_checked_and_documented():
    files = sorted(p.name for p in QUERIES.glob("*.rq"))
    assert files == sorted(CHECKS)
    for name in files:
        text = (QUERIES / name).read_text(encoding="utf-8")
        assert text.startswith("# ") and len(text.split("\n", 1)[0]) > 20, name
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert "FILTER NOT EXISTS" not in body.upper(), name


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_query_on_embedded_store(corpus, name):
    CHECKS[name](rows_of(corpus.store, name), corpus)


def test_vocabulary_example_queries_run_on_the_store(corpus):
    import re

    text = (ROOT / "docs" / "vocabulary.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sparql\n(.*?)```", text, re.S)
    assert len(blocks) >= 7
    for query in blocks:
        assert corpus.store.select_rows(query), query.splitlines()[-1]


def test_superseded_versions_on_a_pack_with_three_versions(tmp_path):
    """superseded-policy-version.rq on decisions made on purpose under old versions."""
    from reasoner.api import Reasoner
    from reasoner.case import case_from_graph

    root = tmp_path / "project"
    shutil.copytree(MINI, root)
    pack = root / "shapes" / "mini" / "pack.ttl"
    pack.write_text(pack.read_text() + '\nm:v0 nr:versionOf m:policy ; owl:versionInfo "0" ; '
                    'nr:effectiveFrom "2019-01-01"^^xsd:date ; nr:hasCriterion m:DX , m:FLAG , m:SCORE .\n')
    r = Reasoner.load(root)
    store = EmbeddedStore(str(tmp_path / "store"))
    store.ensure_kb(root)

    def decide(case_id, day, version):
        ttl = f"""@prefix nr: <https://w3id.org/necessity/ontology#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix : <https://w3id.org/necessity/case/{case_id}/> .
:case a nr:PriorAuthorizationCase ; nr:indexRequest :req .
:req nr:requestedDate "{day}"^^xsd:date ; nr:status "checked" .
:dx a nr:Diagnosis ."""
        case = case_from_graph(Graph().parse(data=ttl, format="turtle"), "t", "turtle", case_id)
        d = r.determine(case, "mini", version)
        store.put(d.iri, r.record_graph(d, case))
        return d.iri

    a = decide("a", "2026-06-01", "0")
    b = decide("b", "2026-06-01", "1")
    c = decide("c", "2025-06-01", "1")
    decide("d", "2026-06-01", None)  # v2, in force and newest
    base = "https://w3id.org/necessity/policy/mini/"
    got = {(row["d"], row["reason"], row["newerVersion"]) for row in rows_of(store, "superseded-policy-version.rq")}
    assert got == {(a, "replaced", base + "v1"), (a, "replaced", base + "v2"),
                   (b, "expired", base + "v2"), (c, "not-newest", base + "v2")}
    decisions = [(a, "mini", base + "v0", date(2026, 6, 1)), (b, "mini", base + "v1", date(2026, 6, 1)),
                 (c, "mini", base + "v1", date(2025, 6, 1)), ("x", "mini", base + "v2", date(2026, 6, 1))]
    assert superseded_expected(decisions, _versions(r.kb)) == got
    store.close()


# ---------------------------------------------------------------------- a real SPARQL server

@pytest.fixture(scope="module")
def oxigraph_server(tmp_path_factory):
    exe = shutil.which("oxigraph", path=str(Path(sys.executable).parent)) or shutil.which("oxigraph")
    if not exe:
        pytest.skip("the `oxigraph` server is not installed (pip install -e '.[test]')")
    port = free_port()
    location = tmp_path_factory.mktemp("oxigraph")
    proc = subprocess.Popen([exe, "serve", "--location", str(location), "--bind",
                             f"127.0.0.1:{port}", "--union-default-graph"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/query?query=ASK%7B%7D", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"oxigraph did not start: {proc.stderr.read().decode()[:500]}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def remote(corpus, oxigraph_server):
    store = RemoteStore(oxigraph_server)
    assert store.ensure_kb(ROOT) is True
    assert store.ensure_kb(ROOT) is False  # keyed by content hash: loaded once
    for iri, nt in corpus.records_nt().items():
        store.put(iri, nt)
    return store


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_query_on_oxigraph_server(corpus, remote, name):
    CHECKS[name](rows_of(remote, name), corpus)


def test_remote_put_replaces_and_lists(corpus, remote):
    d = corpus.decided[0]
    count = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{d.iri}> {{ ?s ?p ?o }} }}"
    before = remote.select_rows(count)[0]["n"]
    remote.put(d.iri, d.record)
    assert remote.select_rows(count)[0]["n"] == before == str(len(d.record))
    assert sorted(remote.records()) == sorted(x.iri for x in corpus.decided)


def test_cli_batch_and_query_against_the_server(corpus, oxigraph_server, tmp_path):
    exe = Path(sys.executable).parent / "reasoner"
    folders = [str(d.case_dir) for d in corpus.decided if d.policy == "lcd-l39240"][:3]
    result = subprocess.run([str(exe), "batch", *folders, "--policy", "lcd-l39240", "--store",
                             oxigraph_server, "--workers", "1"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"{len(folders)} of {len(folders)} cases decided and stored" in result.stdout
    result = subprocess.run([str(exe), "query", str(QUERIES / "outcomes-by-policy-and-month.rq"),
                             "--store", oxigraph_server, "--format", "json"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    total = sum(int(b["decisions"]["value"]) for b in data["results"]["bindings"])
    assert total == len(corpus.decided)

