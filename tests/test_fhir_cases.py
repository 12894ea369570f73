"""Every FHIR case (cases/*/bundle.json) gives its expected outcome and per-criterion verdicts;
FHIR and Turtle forms of the same case give the same determination apart from provenance.

Expected verdicts were worked out by hand from docs/fhir-contract.md §5 (the case specs in
tests/fhir_cases/scenarios_*.py say why, case by case); they are never copied from the engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
BUNDLES = sorted(CASES.glob("*/bundle.json"))
PAIRS = [p for p in BUNDLES if (p.parent / "case.ttl").exists()]
EXPECTED_COUNT = 62  # 58 cases of tests/fhir_cases/ + the 4 worked examples
NEVER_DECIDED = {"ESI-LIM-9", "ESI-LIM-11", "ESI-PQ", "ESI-BG"}  # docs/fhir-contract.md §5.2: n/a or omitted

# Disagreements between the hand-worked verdicts and the engine that were traced to the
# knowledge base or the engine, not to the case (reported to the lead; remove when fixed).
KNOWN_ENGINE_BUGS: dict[str, str] = {}


def _param(path: Path):
    name = path.parent.name
    marks = []
    if name in KNOWN_ENGINE_BUGS:
        marks.append(pytest.mark.xfail(reason=KNOWN_ENGINE_BUGS[name], strict=False))
    return pytest.param(path, id=name, marks=marks)


def test_collected_every_fhir_case():
    assert len(BUNDLES) == EXPECTED_COUNT, [p.parent.name for p in BUNDLES]
    assert len(PAIRS) >= 5
    for p in BUNDLES:
        assert (p.parent / "expected.json").exists(), p


def _determine(reasoner, path: Path, policy: str) -> dict:
    return reasoner.determine(reasoner.load_case(path), policy).to_dict()


@pytest.mark.parametrize("bundle", [_param(p) for p in BUNDLES])
def test_fhir_case_verdicts(reasoner, bundle):
    expected = json.loads((bundle.parent / "expected.json").read_text())["expected"]
    for policy, want in expected.items():
        got = _determine(reasoner, bundle, policy)
        verdicts = {c["ref"]: c["status"] for c in got["criteria"]}
        wrong = {}
        for ref, status in want["criteria"].items():
            if ref not in verdicts and ref in NEVER_DECIDED and status == "not-applicable":
                continue
            if verdicts.get(ref) != status:
                wrong[ref] = (status, verdicts.get(ref))
        extra = set(verdicts) - set(want["criteria"])
        assert not wrong and not extra, f"{policy}: (expected, got) {wrong}; unexpected {extra}"
        assert got["outcome"] == want["outcome"], policy


def _comparable(d: dict) -> dict:
    """A determination without provenance: outcome, per criterion ref/status/message, and the
    refs of the missing information."""
    return {
        "outcome": d["outcome"],
        "criteria": [(c["ref"], c["status"], c["message"]) for c in d["criteria"]],
        "missing_information": sorted(m["ref"] for m in d.get("missing_information", [])),
    }


@pytest.mark.parametrize("bundle", [pytest.param(p, id=p.parent.name) for p in PAIRS])
def test_fhir_and_turtle_forms_agree(reasoner, bundle):
    expected = json.loads((bundle.parent / "expected.json").read_text())["expected"]
    for policy in expected:
        a = _comparable(_determine(reasoner, bundle, policy))
        b = _comparable(_determine(reasoner, bundle.parent / "case.ttl", policy))
        assert a == b, policy


@pytest.mark.parametrize("policy", ["lcd-l39240", "clinical-snrb"])
def test_seed_fhir_equals_seed_turtle(reasoner, policy):
    fhir_seed = CASES / "fhir-example-seed-l5-snrb" / "bundle.json"
    turtle_seed = CASES / "seed-l5-snrb" / "case.ttl"
    a = _determine(reasoner, fhir_seed, policy)
    b = _determine(reasoner, turtle_seed, policy)
    assert _comparable(a) == _comparable(b)
    if policy == "lcd-l39240":
        assert a["outcome"] == "denied"


def test_fhir_facts_name_entry_and_element(reasoner):
    """The JSON facts[].source of a FHIR case names the Bundle entry (fullUrl) and element."""
    d = _determine(reasoner, CASES / "fhir-example-approvable-left-l5" / "bundle.json", "lcd-l39240")
    sources = [f["source"] for c in d["criteria"] for f in c["facts"] if f.get("source")]
    assert sources
    assert any("urn:uuid:" in s and "ServiceRequest." in s for s in sources), sources[:5]


def test_unrecognised_items_are_reported(reasoner):
    d = _determine(reasoner, CASES / "fhir-approved-authored-on-unrecognised" / "bundle.json",
                   "lcd-l39240")
    text = json.dumps(d)
    assert "8310-5" in text and "Immunization" in text
    assert d["outcome"] == "approved"
