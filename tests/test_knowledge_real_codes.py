"""Real-world codings and care plans (issue 8): the cases of cases/real-codes/ give their expected
verdicts, and the knowledge behind them holds.

Each case is an existing case with one real-world change (a Synthea-shaped diabetes CarePlan, a
reason diagnosis coded in SNOMED CT or WHO ICD-10, an RxNorm clinical drug instead of the
ingredient); its expected.json was worked out by hand from CONVENTIONS.md §4.3, §4.6, §4.13, §5.2
and §5.3 rule 1, and names the verdict the code gave before the fix ("before_fix").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SKOS

from .conftest import CASES, ROOT

REAL = CASES / "real-codes"
REAL_CASES = sorted(p for p in REAL.iterdir() if (p / "expected.json").exists())
EXPECTED_COUNT = 6
NR = "https://w3id.org/necessity/ontology#"
VS = "https://w3id.org/necessity/valueset/"
SCT = "https://w3id.org/necessity/code/snomed/"
ICD = "https://w3id.org/necessity/code/icd10cm/"
WHO = "https://w3id.org/necessity/code/icd10/"
NEVER_DECIDED = {"ESI-LIM-9", "ESI-LIM-11", "ESI-PQ", "ESI-BG"}


def _determine(reasoner, folder: Path, policy: str) -> dict:
    return reasoner.determine(reasoner.load_case(folder), policy).to_dict()


def test_collected_every_real_codes_case():
    assert len(REAL_CASES) == EXPECTED_COUNT, [p.name for p in REAL_CASES]
    for folder in REAL_CASES:
        assert (folder / "bundle.json").exists() or (folder / "case.ttl").exists(), folder


@pytest.mark.parametrize("folder", [pytest.param(p, id=p.name) for p in REAL_CASES])
def test_real_codes_case_verdicts(reasoner, folder):
    expected = json.loads((folder / "expected.json").read_text())["expected"]
    for policy, want in expected.items():
        got = _determine(reasoner, folder, policy)
        verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
        wrong = {ref: (status, verdicts.get(ref)) for ref, status in want["criteria"].items()
                 if verdicts.get(ref) != status
                 and not (ref not in verdicts and ref in NEVER_DECIDED and status == "not-applicable")}
        assert not wrong, f"{policy}: (expected, got) {wrong}"
        assert got["outcome"] == want["outcome"], policy


def test_diabetes_care_plan_is_ignored_not_decisive(reasoner):
    """Issue 8: a plan addressing only another problem neither meets nor fails ESI-CI-10."""
    got = _determine(reasoner, REAL / "fhir-real-synthea-diabetes-care-plan", "lcd-l39240")
    verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
    assert verdicts["ESI-CI-10"] == "missing"
    assert got["outcome"] != "denied"


def test_diagnosis_read_alike_by_ci1a_and_lim5(reasoner):
    """One fact, one reading: axial SNOMED CT -> both unmet; unknown group -> both missing."""
    for name, status in (("fhir-real-snomed-chronic-low-back-pain", "unmet"),
                         ("fhir-real-dual-coded-axial", "unmet"),
                         ("fhir-real-snomed-unknown-group", "missing")):
        got = _determine(reasoner, REAL / name, "lcd-l39240")
        verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
        assert (verdicts["ESI-CI-1a"], verdicts["ESI-LIM-5"]) == (status, status), name


def test_clinical_snrb_reads_the_same_groups(reasoner):
    """SNRB-2 reads the diagnosis group as ESI-CI-1a does (sciatica met, unknown missing)."""
    got = _determine(reasoner, REAL / "fhir-real-snomed-sciatica", "clinical-snrb")
    assert {c["ref"]: c["status"] for c in got["criteria"]}["SNRB-2"] == "met"
    got = _determine(reasoner, REAL / "fhir-real-snomed-unknown-group", "clinical-snrb")
    assert {c["ref"]: c["status"] for c in got["criteria"]}["SNRB-2"] == "missing"


def _knowledge() -> Graph:
    g = Graph()
    for path in sorted((ROOT / "knowledge").rglob("*.ttl")):
        g.parse(path)
    return g


def test_snomed_group_members_have_a_source_and_one_group():
    g = _knowledge()
    groups = [URIRef(VS + n) for n in ("diagnosis-covered-radicular", "diagnosis-covered-postlaminectomy",
                                       "diagnosis-covered-zoster", "diagnosis-axial-excluded")]
    for group in groups:
        assert (group, RDF.type, URIRef(NR + "DiagnosisGroup")) in g
    seen: dict = {}
    for group in groups:
        for code in g.objects(group, URIRef(NR + "includesCode")):
            if str(code).startswith(SCT):
                assert code not in seen, f"{code} in {seen.get(code)} and {group}"
                seen[code] = group
                assert g.value(code, URIRef("http://purl.org/dc/terms/source")) is not None, code
    assert seen[URIRef(SCT + "278860009")] == URIRef(VS + "diagnosis-axial-excluded")
    assert seen[URIRef(SCT + "23056005")] == URIRef(VS + "diagnosis-covered-radicular")


def test_who_icd10_matches_only_codes_that_mean_the_same():
    g = _knowledge()
    matched = {str(s)[len(WHO):]: str(o)[len(ICD):] for s, o in g.subject_objects(SKOS.exactMatch)
               if str(s).startswith(WHO)}
    assert matched["M96.1"] == "M96.1" and matched["B02.9"] == "B02.9"
    for code in ("M54.1", "M51.1", "M47.2", "B02.2"):  # ICD-10-CM subcodes fall in different groups
        assert code not in matched
    for who, cm in matched.items():
        assert (URIRef(ICD + cm), RDF.type, SKOS.Concept) in g, cm
