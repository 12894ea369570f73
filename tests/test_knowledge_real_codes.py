"""Real-world codings and care plans (issue 8): the cases of cases/real-codes/ give their expected
verdicts, and the knowledge behind them holds.

Each case (cases/real-codes/<name>.json or .ttl, with <name>.expected.json) is an existing case
with one real-world change (a Synthea-shaped diabetes CarePlan, a
reason diagnosis coded in SNOMED CT or WHO ICD-10, an RxNorm clinical drug instead of the
ingredient); its expected.json was worked out by hand from docs/fhir-contract.md §4.3, §4.6, §4.13, §5.2
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
# Flat files, <name>.json (FHIR) or <name>.ttl (Turtle) with <name>.expected.json: kept out of the
# case folders that the corpus-wide suites count (tests/test_fhir_cases.py, tests/test_store.py).
REAL_CASES = sorted(REAL.glob("*.expected.json"))
EXPECTED_COUNT = 7
NR = "https://w3id.org/necessity/ontology#"
VS = "https://w3id.org/necessity/valueset/"
SCT = "https://w3id.org/necessity/code/snomed/"
ICD = "https://w3id.org/necessity/code/icd10cm/"
WHO = "https://w3id.org/necessity/code/icd10/"
NEVER_DECIDED = {"ESI-LIM-9", "ESI-LIM-11", "ESI-PQ", "ESI-BG"}


def _case_file(name: str) -> Path:
    for suffix in (".json", ".ttl"):
        if (REAL / f"{name}{suffix}").exists():
            return REAL / f"{name}{suffix}"
    raise AssertionError(f"no case file for {name}")


def _determine(reasoner, name: str, policy: str) -> dict:
    return reasoner.determine(reasoner.load_case(_case_file(name)), policy).to_dict()


def test_collected_every_real_codes_case():
    assert len(REAL_CASES) == EXPECTED_COUNT, [p.name for p in REAL_CASES]
    for expected in REAL_CASES:
        _case_file(expected.name[: -len(".expected.json")])


@pytest.mark.parametrize("expected_path", [pytest.param(p, id=p.name[: -len(".expected.json")])
                                           for p in REAL_CASES])
def test_real_codes_case_verdicts(reasoner, expected_path):
    expected = json.loads(expected_path.read_text())["expected"]
    name = expected_path.name[: -len(".expected.json")]
    for policy, want in expected.items():
        got = _determine(reasoner, name, policy)
        verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
        wrong = {ref: (status, verdicts.get(ref)) for ref, status in want["criteria"].items()
                 if verdicts.get(ref) != status
                 and not (ref not in verdicts and ref in NEVER_DECIDED and status == "not-applicable")}
        assert not wrong, f"{policy}: (expected, got) {wrong}"
        assert got["outcome"] == want["outcome"], policy


def test_diabetes_care_plan_is_ignored_not_decisive(reasoner):
    """Issue 8: a plan addressing only another problem neither meets nor fails ESI-CI-10."""
    got = _determine(reasoner, "fhir-real-synthea-diabetes-care-plan", "lcd-l39240")
    verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
    assert verdicts["ESI-CI-10"] == "missing"
    assert got["outcome"] != "denied"


def test_diagnosis_read_alike_by_ci1a_and_lim5(reasoner):
    """One fact, one reading: axial SNOMED CT -> both unmet; unknown group -> both missing."""
    for name, status in (("fhir-real-snomed-chronic-low-back-pain", "unmet"),
                         ("fhir-real-dual-coded-axial", "unmet"),
                         ("fhir-real-snomed-unknown-group", "missing")):
        got = _determine(reasoner, name, "lcd-l39240")
        verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
        assert (verdicts["ESI-CI-1a"], verdicts["ESI-LIM-5"]) == (status, status), name


def test_clinical_snrb_reads_the_same_groups(reasoner):
    """SNRB-2 reads the diagnosis group as ESI-CI-1a does (sciatica met, unknown missing)."""
    got = _determine(reasoner, "fhir-real-snomed-sciatica", "clinical-snrb")
    assert {c["ref"]: c["status"] for c in got["criteria"]}["SNRB-2"] == "met"
    got = _determine(reasoner, "fhir-real-snomed-unknown-group", "clinical-snrb")
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


def test_rxnorm_products_come_from_the_source_and_link_known_ingredients(tmp_path):
    """Every product code is in the cited source; every ingredient is a value-set ingredient; the
    committed file is what the script generates."""
    import subprocess
    import sys

    source = json.loads((ROOT / "knowledge" / "sources" / "synthea-medication-codes.json").read_text())
    source_codes = {c["code"] for c in source["codes"]}
    g = Graph().parse(ROOT / "knowledge" / "codes" / "rxnorm-products.ttl")
    ingredients = Graph().parse(ROOT / "knowledge" / "codes" / "rxnorm.ttl")
    products = set(g.subjects(URIRef(NR + "hasIngredient"), None))
    assert len(products) == 8
    for product in products:
        assert str(product).rsplit("/", 1)[1] in source_codes, product
        for ingredient in g.objects(product, URIRef(NR + "hasIngredient")):
            assert (ingredient, RDF.type, SKOS.Concept) in ingredients, ingredient
    out = tmp_path / "products.ttl"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_rxnorm_products.py"), str(out)],
                   check=True, capture_output=True)
    assert out.read_text() == (ROOT / "knowledge" / "codes" / "rxnorm-products.ttl").read_text()


def test_rxnorm_product_is_a_member_through_its_ingredient(reasoner):
    """Rule 20 follows nr:hasIngredient: the naproxen clinical drug counts as a conservative
    medication (the case is approved, not denied on ESI-CI-3)."""
    got = _determine(reasoner, "rxnorm-clinical-drug-naproxen", "lcd-l39240")
    assert {c["ref"]: c["status"] for c in got["criteria"]}["ESI-CI-3"] == "met"


def test_value_sets_hold_the_physical_therapy_and_pain_scale_codes():
    """Issue 8 point 6: physical therapy as CPT or SNOMED CT and the pain scales are classified by
    code (docs/fhir-contract.md §4.5, §4.6, §4.13)."""
    g = _knowledge()
    inc = URIRef(NR + "includesCode")
    nondrug = set(g.objects(URIRef(VS + "conservative-nondrug"), inc))
    rehab = set(g.objects(URIRef(VS + "rehabilitation"), inc))
    scales = set(g.objects(URIRef(VS + "baseline-scales"), inc))
    cpt = "https://w3id.org/necessity/code/cpt/"
    for code in ("97110", "97112", "97140", "97530"):
        assert URIRef(cpt + code) in nondrug and URIRef(cpt + code) in rehab, code
    for code in ("97161", "97162", "97163"):
        assert URIRef(cpt + code) in nondrug, code
    assert URIRef(SCT + "91251008") in nondrug and URIRef(SCT + "91251008") in rehab
    loinc = "https://w3id.org/necessity/code/loinc/"
    for code in ("72514-3", "38208-5", "38214-3", "97908-8"):
        assert URIRef(loinc + code) in scales, code
