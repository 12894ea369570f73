"""The letter on whole records (issue 8, point 9) and its reference list (issue 10, point 3).

A request sent with a whole record carries many items the reasoner keeps but does not use: the
letter counts them by kind and names those of a kind a missing criterion asks for; the JSON keeps
every one. The reference list is in one citation style, with a dagger (and one legend line) for a
reference whose details are not all verified, never the verification notes.
"""

from __future__ import annotations

import copy
import json
import re
import uuid

import pytest

from reasoner.render.json import render_json

from .conftest import CASES

BASE = CASES / "fhir-pended-no-care-plan" / "bundle.json"  # pended: no care plan (ESI-CI-10)
P = "https://w3id.org/necessity/fhir/CodeSystem/"
N_CAREPLANS, N_CONDITIONS, N_SCORES, N_IMMUNIZATIONS, N_VITALS = 4, 5, 6, 8, 3


def _entry(resource: dict, n: str) -> dict:
    return {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'whole-record-' + n)}",
            "resource": resource}


def whole_record(tmp_path):
    """The pended no-care-plan request plus a whole record's worth of items that do not count
    (draft care plans, resolved conditions, preliminary scores) or are not recognised
    (immunizations, vital signs)."""
    bundle = json.loads(BASE.read_text(encoding="utf-8"))
    patient = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    reason = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition")
    subject = {"reference": patient}
    extra = []
    for i in range(N_CAREPLANS):
        extra.append(_entry({
            "resourceType": "CarePlan", "status": "draft", "intent": "plan", "subject": subject,
            "addresses": [{"reference": reason}], "period": {"start": "2026-03-30"},
            "activity": [{"detail": {"status": "in-progress", "code": {"coding": [
                {"system": P + "conservative-care", "code": "home-exercise-program"}]}}}]}, f"cp{i}"))
    for i in range(N_CONDITIONS):
        extra.append(_entry({
            "resourceType": "Condition", "subject": subject,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "resolved"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]},
            "onsetDateTime": f"201{i}-01-01"}, f"dx{i}"))
    for i in range(N_SCORES):
        extra.append(_entry({
            "resourceType": "Observation", "status": "preliminary", "subject": subject,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "survey"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
            "effectiveDateTime": f"2026-01-0{i + 1}",
            "valueQuantity": {"value": 6, "unit": "{score}", "system": "http://unitsofmeasure.org",
                              "code": "{score}"}}, f"nrs{i}"))
    for i in range(N_IMMUNIZATIONS):
        extra.append(_entry({
            "resourceType": "Immunization", "status": "completed", "patient": subject,
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
            "occurrenceDateTime": f"201{i}-10-01"}, f"imm{i}"))
    for i in range(N_VITALS):
        extra.append(_entry({
            "resourceType": "Observation", "status": "final", "subject": subject,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
            "effectiveDateTime": f"2026-02-0{i + 1}",
            "valueQuantity": {"value": 37, "unit": "Cel", "system": "http://unitsofmeasure.org",
                              "code": "Cel"}}, f"temp{i}"))
    out = copy.deepcopy(bundle)
    out["entry"] = bundle["entry"] + extra
    path = tmp_path / "whole-record.json"
    path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def decided(reasoner, tmp_path_factory):
    path = whole_record(tmp_path_factory.mktemp("whole-record"))
    d = reasoner.determine(reasoner.load_case(path), "lcd-l39240")
    return d, reasoner.letter(d), json.loads(render_json(d))


def test_whole_record_decides_as_the_request_alone(reasoner, decided):
    d, _, _ = decided
    alone = reasoner.determine(reasoner.load_case(BASE), "lcd-l39240")
    assert d.outcome == alone.outcome == "pended"
    assert {c.ref: c.status for c in d.criteria} == {c.ref: c.status for c in alone.criteria}


def test_json_keeps_every_item(decided):
    _, _, data = decided
    assert len(data["not_counted"]) == N_CAREPLANS + N_CONDITIONS + N_SCORES
    assert len(data["not_recognised"]) == N_IMMUNIZATIONS + N_VITALS


def test_letter_counts_items_by_kind_instead_of_listing_them(decided):
    _, letter, _ = decided
    counted = next(ln for ln in letter.splitlines() if ln.startswith("Record items not counted"))
    assert f": {N_CAREPLANS + N_CONDITIONS + N_SCORES} (" in counted
    assert f"{N_SCORES} Observation" in counted and f"{N_CONDITIONS} Condition" in counted
    assert f"{N_CAREPLANS} CarePlan" in counted
    recognised = next(ln for ln in letter.splitlines() if ln.startswith("Record items not recognised"))
    assert f"{N_IMMUNIZATIONS} Immunization" in recognised and f"{N_VITALS} Observation" in recognised
    # the whole list is not printed: the letter names at most a few items
    assert letter.count("not counted)") <= 3
    assert "The full list is in the determination's JSON." in letter


def test_letter_names_the_items_that_bear_on_a_missing_criterion(decided):
    """The draft care plans would have decided ESI-CI-10, which is missing: they are named."""
    _, letter, _ = decided
    bearing = [ln for ln in letter.splitlines() if ln.startswith("- Bearing on")]
    assert len(bearing) == 1, bearing
    assert bearing[0].startswith("- Bearing on ESI-CI-10, ESI-CI-11: ")
    assert "CarePlan.status is draft" in bearing[0] and f"({N_CAREPLANS} items)" in bearing[0]


def test_few_items_are_listed_in_full(reasoner):
    path = CASES / "fhir-approved-authored-on-unrecognised" / "bundle.json"
    letter = reasoner.letter(reasoner.determine(reasoner.load_case(path), "lcd-l39240"))
    line = next(ln for ln in letter.splitlines() if ln.startswith("Not recognised"))
    assert "Immunization" in line and "8310-5" in line


def test_reference_list_is_one_style_with_a_mark_for_unverified_details(reasoner):
    from .test_seed_letter import CASE

    letter = reasoner.letter(reasoner.determine(reasoner.load_case(CASE), "clinical-snrb"))
    _, _, tail = letter.rpartition("References")
    refs = [ln for ln in tail.splitlines() if re.match(r"\d+\. ", ln)]
    assert len(refs) >= 10
    for ln in refs:
        assert "record partly verified" not in ln and "(record " not in ln and "verified" not in ln, ln
        assert not re.search(r"PMID \d", ln), ln  # PMID: nnn, Vancouver style
    daggered = [ln for ln in refs if ln.endswith("\u2020")]
    assert daggered and len(daggered) < len(refs)
    assert tail.rstrip().splitlines()[-1].startswith("\u2020 ")
    sato = next(ln for ln in refs if "Sato M" in ln)  # every field verified: no mark
    assert sato.endswith("PMID: 19910770.")


# ---------------------------------------------------------------- outputs name no internal document


def _decisions() -> list[tuple[str, str]]:
    out = []
    for path in sorted(CASES.glob("*/expected.json")):
        for policy in json.loads(path.read_text(encoding="utf-8")).get("expected", {}):
            out.append((path.parent.name, policy))
    return out


DECISIONS = _decisions()
# a file name of the project, a section sign of an internal document, a doubled space inside a line
FORBIDDEN = [(re.compile(r"\.(md|ttl|txt)\b"), "a file name"), (re.compile("\u00a7"), "a section sign"),
             (re.compile(r"\S  +\S"), "a double space")]


def test_every_case_is_scanned():
    assert len(DECISIONS) >= 111, len(DECISIONS)


@pytest.mark.parametrize("case_id,policy", DECISIONS, ids=[f"{c}@{p}" for c, p in DECISIONS])
def test_json_and_letter_name_no_file_and_no_internal_section(reasoner, case_id, policy):
    """Issue 10, point 3: what reaches a reader cites public sources and the project's policy
    descriptions by name, never a file, a section sign of an internal document or a double space."""
    folder = CASES / case_id
    source = folder / "case.ttl" if (folder / "case.ttl").exists() else folder / "bundle.json"
    d = reasoner.determine(reasoner.load_case(source), policy)
    for kind, text in (("json", render_json(d)), ("letter", reasoner.letter(d))):
        for line in text.splitlines():
            for pattern, what in FORBIDDEN:
                assert not pattern.search(line), f"{kind} holds {what}: {line.strip()[:200]}"
