"""The seed case reproduces the seed determination letter: its determination, facts, evidence
numbers and sources are listed below (SEED_FACTS, SEED_NUMBERS, SOURCE), carried over from the
letter the project started from.

Runs `reasoner determine cases/seed-l5-snrb/case.ttl --policy clinical-snrb --format letter`
through click's CliRunner and checks: the outcome is approved; every fact of the seed rationale is
printed; every number of the seed evidence is printed in a line whose citation numbers resolve, in
the letter's numbered reference list, to the source the number comes from. Also checks that the
Turtle and FHIR forms of the seed case give the verdicts of cases/seed-l5-snrb/expected.json
under both packs.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from .conftest import ROOT

CASE = ROOT / "cases" / "seed-l5-snrb" / "case.ttl"
EXPECTED = json.loads((ROOT / "cases" / "seed-l5-snrb" / "expected.json").read_text())
BUNDLE = ROOT / "cases" / "fhir-example-seed-l5-snrb" / "bundle.json"  # the FHIR form of the case


@pytest.fixture(scope="module")
def letter() -> str:
    from reasoner.cli import main

    result = CliRunner().invoke(
        main, ["determine", str(CASE), "--policy", "clinical-snrb", "--format", "letter"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def references(letter) -> dict[int, str]:
    """The numbered reference list: number -> text (DOI/PMID included)."""
    _, _, tail = letter.rpartition("References")
    assert tail, "the letter has no reference list"
    refs = {}
    for line in tail.splitlines():
        m = re.match(r"\s*(\d+)\.\s+(.*)", line)
        if m:
            refs[int(m.group(1))] = m.group(2)
    assert refs, "empty reference list"
    return refs


def test_outcome_is_approved(letter, reasoner):
    assert "APPROVED" in letter
    d = reasoner.determine(reasoner.load_case(CASE), "clinical-snrb")
    assert d.outcome == "approved"


SEED_FACTS = {
    "6 weeks of home exercise": r"home exercise programme, 6 weeks",
    "acetaminophen (Tylenol)": r"Acetaminophen \(Tylenol\)",
    "Medrol Dosepak": r"Medrol Dosepak",
    "methylprednisolone": r"Methylprednisolone",
    "heat": r"\bHeat\b",
    "ice": r"\bice\b",
    "2-year duration": r"2 years",
    "bilateral buttock and leg pain": r"bilateral buttock and leg pain",
    "transitional anatomy": r"transitional anatomy",
    "L3-4 facet arthrosis": r"facet arthrosis at L3-4",
    "no canal stenosis": r"no significant spinal canal stenosis",
    "SLR 40-50 degrees": r"[Ss]traight leg raise, left: equivocal at 40-50 degrees",
    "strength 5/5": r"5/5",
    "reflexes 2+": r"2\+",
    "Hoffmann": r"Hoffmann sign negative",
    "clonus": r"clonus negative",
    "RFA 64635": r"radiofrequency ablation.*64635",
    "RFA 64636": r"radiofrequency ablation.*64636",
    "trigger point": r"[Tt]rigger point injection \(CPT 20552\)",
    "sciatic block": r"Sciatic nerve block \(CPT 64445\)",
    "comprehensive programme": r"[Cc]omprehensive pain management programme",
    "physical therapy": r"Physical therapy",
    "psychosocial support": r"Psychosocial support",
    "request 64483": r"CPT 64483",
    "M54.17": r"M54\.17",
}


@pytest.mark.parametrize("name", list(SEED_FACTS))
def test_seed_fact_is_printed(letter, name):
    assert re.search(SEED_FACTS[name], letter), f"{name!r} not in the letter"


def test_seed_facts_collected():
    assert len(SEED_FACTS) == 25


# number as printed -> a phrase of the reference text of its source
SOURCE = {
    "jordan": "selective nerve block in treating lumbar radiculopathy",
    "vassiliev": "Vassiliev D",
    "arun-kumar": "Arun-Kumar K",
    "sato": "Sato M",
}
SEED_NUMBERS = [
    ("54%", "jordan"), ("29%", "jordan"), ("76 patients", "jordan"), ("90.7%", "jordan"),
    ("28.9%", "jordan"), ("3-month follow-up", "jordan"), ("61.8%", "jordan"),
    ("57.7%", "vassiliev"), ("46.1%", "vassiliev"), ("1 ml", "vassiliev"),
    ("2.5 months", "arun-kumar"), ("4.3 months", "arun-kumar"),
    ("78 patients", "sato"),
]


def _cited_numbers(line: str) -> set[int]:
    out = set()
    for group in re.findall(r"\[([\d,\s]+)\]", line):
        out.update(int(n) for n in re.findall(r"\d+", group))
    return out


@pytest.mark.parametrize("number,source", SEED_NUMBERS, ids=[n for n, _ in SEED_NUMBERS])
def test_seed_number_is_cited_to_its_source(letter, references, number, source):
    body, _, _ = letter.rpartition("References")
    lines = [ln for ln in body.splitlines() if number in ln]
    assert lines, f"{number} not printed"
    ok = []
    for line in lines:
        cited = _cited_numbers(line)
        assert cited, f"{number} printed without a citation: {line}"
        for n in cited:
            assert n in references, f"citation [{n}] does not resolve in the reference list"
        ok.extend(n for n in cited if SOURCE[source] in references[n])
    assert ok, f"{number} is not cited to the {source} source: {lines}"


def test_reference_list_carries_identifiers(references):
    text = "\n".join(references.values())
    for ident in ("10.5704/MOJ.1511.002", "28611904", "10.1097/BRS.0b013e3181b43c62", "19910770",
                  "10.7326/0003-4819-147-7-200710020-00006", "17909209",
                  "10.1016/j.pain.2013.06.004"):
        assert ident in text, f"{ident} missing from the references"


def test_seed_headings_are_printed(letter):
    from .test_evidence import SEED_HEADINGS

    lines = [ln.strip() for ln in letter.splitlines()]
    missing = [h for h in SEED_HEADINGS if h not in lines]
    assert not missing, f"headings not printed: {missing}"


@pytest.mark.parametrize("form", ["turtle", "fhir"])
@pytest.mark.parametrize("policy", sorted(EXPECTED["expected"]))
def test_both_forms_give_the_expected_verdicts(reasoner, form, policy):
    path = CASE if form == "turtle" else BUNDLE
    want = EXPECTED["expected"][policy]
    d = reasoner.determine(reasoner.load_case(path), policy)
    got = {c.ref: c.status for c in d.criteria}
    assert d.outcome == want["outcome"]
    assert got == want["criteria"]


def test_seed_headings_are_printed_in_the_seed_order(letter):
    from .test_evidence import SEED_HEADINGS

    lines = [ln.strip() for ln in letter.split("References")[0].splitlines()]
    positions = [lines.index(h) for h in SEED_HEADINGS if h in lines]
    assert positions == sorted(positions)
