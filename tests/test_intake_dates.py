"""Issue 8 point 5: partial dates ("2004", "2004-05") never abort; a criterion is decided when
both completions agree and missing, naming the date, when they disagree."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from reasoner.intake import dates

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "cases" / "fhir-example-approvable-left-l5" / "bundle.json"  # D = 2026-04-13


def decide(reasoner, tmp_path: Path, edit) -> dict:
    b = json.loads(BASE.read_text())
    for e in b["entry"]:
        edit(e["resource"])
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(b))
    return reasoner.determine(reasoner.load_case(path), "lcd-l39240").to_dict()


def status(d: dict, ref: str) -> dict:
    return next(c for c in d["criteria"] if c["ref"] == ref)


@pytest.mark.parametrize("text,earliest,latest", [
    ("2004", date(2004, 1, 1), date(2004, 12, 31)),
    ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
    ("2025-11", date(2025, 11, 1), date(2025, 11, 30)),
])
def test_completions(text, earliest, latest):
    assert dates.completions(text) == (earliest, latest)


@pytest.mark.parametrize("text", ["2004-13", "2004-05-06", "04", None, "2004-5"])
def test_not_partial(text):
    assert dates.completions(text) is None


def test_agreeing_completions_decide(reasoner, tmp_path):
    def edit(r):
        if r["resourceType"] == "Condition":
            r["onsetDateTime"] = "2025-12"  # 103-133 days before D: the duration is met either way
    d = decide(reasoner, tmp_path, edit)
    assert d["outcome"] == "approved" and status(d, "ESI-CI-3")["status"] == "met"


def test_disagreeing_completions_make_the_criterion_missing(reasoner, tmp_path):
    def edit(r):
        if r["resourceType"] == "Condition":
            r["onsetDateTime"] = "2026-03"  # 1 March: 43 days (met); 31 March: 13 days (unmet)
    d = decide(reasoner, tmp_path, edit)
    c = status(d, "ESI-CI-3")
    assert c["status"] == "missing" and d["outcome"] == "pended"
    assert "Condition.onsetDateTime '2026-03'" in c["message"] and "full date" in c["message"]
    assert any(m["ref"] == "ESI-CI-3" for m in d["missing_information"])


def test_partial_birth_date_only_moves_the_age(reasoner, tmp_path):
    def edit(r):
        if r["resourceType"] == "Patient":
            r["birthDate"] = "1973"
    d = decide(reasoner, tmp_path, edit)
    assert d["outcome"] == "approved"


def test_partial_requested_date(reasoner, tmp_path):
    def edit(r):
        if r["resourceType"] == "ServiceRequest" and "64483" in json.dumps(r.get("code")):
            r["occurrenceDateTime"] = "2026-04"  # 1 April or 30 April: every verdict agrees
    d = decide(reasoner, tmp_path, edit)
    assert d["outcome"] in ("approved", "pended")
    assert all(c["status"] != "unmet" for c in d["criteria"])
