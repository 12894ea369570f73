"""The synthetic Turtle cases of pack lcd-l39240: every expected verdict, and corpus coverage.

Each `cases/<id>/expected.json` with a `case.ttl` and an "lcd-l39240" expectation is one test
(the case id is the test id): the engine's outcome and every criterion verdict must equal the
expectation, which was worked out by hand from docs/fhir-contract.md §5. The corpus tests check that
there are at least 22 such cases and that, over them, every criterion of the pack is met and unmet
at least once (where it has an unmet condition), missing at least once (where it has a missing
condition) and not-applicable at least once (where it has a not-applicable condition).
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from reasoner.vocab import NR

from .conftest import CASES

POLICY = "lcd-l39240"
MIN_CASES = 22


def _lcd_cases() -> list[tuple[str, dict]]:
    out = []
    for expected_path in sorted(CASES.glob("*/expected.json")):
        folder = expected_path.parent
        if not (folder / "case.ttl").exists():
            continue
        expected = json.loads(expected_path.read_text()).get("expected", {}).get(POLICY)
        if expected:
            out.append((folder.name, expected))
    return out


LCD_CASES = _lcd_cases()


@pytest.fixture(scope="module")
def determinations(reasoner):
    """Every collected case decided once (shared by the per-case and the corpus tests)."""
    cache: dict[str, object] = {}

    def decide(case_id: str):
        if case_id not in cache:
            case = reasoner.load_case(CASES / case_id / "case.ttl")
            cache[case_id] = reasoner.determine(case, POLICY)
        return cache[case_id]

    return decide


def _outcome(determination) -> str:
    value = getattr(determination.outcome, "value", determination.outcome)
    return str(value).rsplit(".", 1)[-1].lower()


def _verdicts(determination) -> dict[str, str]:
    return {c.ref: str(getattr(c.status, "value", c.status)) for c in determination.criteria}


@pytest.mark.parametrize("case_id,expected", LCD_CASES, ids=[c for c, _ in LCD_CASES])
def test_case_verdicts(determinations, case_id, expected):
    determination = determinations(case_id)
    got = _verdicts(determination)
    assert set(expected["criteria"]) == set(got), (
        f"criteria of the pack and of expected.json differ: "
        f"only expected {sorted(set(expected['criteria']) - set(got))}, "
        f"only in the pack {sorted(set(got) - set(expected['criteria']))}"
    )
    wrong = {ref: (want, got[ref]) for ref, want in expected["criteria"].items() if got[ref] != want}
    assert not wrong, f"{case_id}: criterion (expected, got): {wrong}"
    assert _outcome(determination) == expected["outcome"], (
        f"{case_id}: outcome expected {expected['outcome']}, got {_outcome(determination)}"
    )


def test_enough_cases_collected():
    assert len(LCD_CASES) >= MIN_CASES, f"only {len(LCD_CASES)} lcd-l39240 Turtle cases"


def _criterion_kinds(reasoner) -> dict[str, set]:
    """reference id -> the condition kinds its shapes have."""
    pack = reasoner.kb.pack(POLICY)
    kinds: dict[str, set] = defaultdict(set)
    for criterion, kind in pack.condition_shapes.values():
        ref = pack.graph.value(criterion, NR.referenceId)
        kinds[str(ref)].add(kind)
    return kinds


def test_every_criterion_exercised(reasoner, determinations):
    kinds = _criterion_kinds(reasoner)
    seen: dict[str, set] = defaultdict(set)
    for case_id, _ in LCD_CASES:
        for ref, status in _verdicts(determinations(case_id)).items():
            seen[ref].add(status)
    gaps = []
    for ref, ref_kinds in sorted(kinds.items()):
        always_not_applicable = ref_kinds == {NR.NotApplicableCondition}
        needed = set()
        if not always_not_applicable:
            needed.add("met")
        if NR.UnmetCondition in ref_kinds:
            needed.add("unmet")
        if NR.MissingCondition in ref_kinds:
            needed.add("missing")
        if NR.NotApplicableCondition in ref_kinds:
            needed.add("not-applicable")
        missing = needed - seen[ref]
        if missing:
            gaps.append(f"{ref}: never {sorted(missing)} (seen {sorted(seen[ref])})")
    assert not gaps, "criteria not exercised by the corpus:\n" + "\n".join(gaps)


def test_expectations_cover_every_outcome():
    outcomes = {expected["outcome"] for _, expected in LCD_CASES}
    assert outcomes == {"approved", "denied", "pended"}, outcomes
