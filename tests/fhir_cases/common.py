"""Shared pieces of the FHIR case builder: code systems, the base request, the case registry.

Each case is a short *spec* of clinical facts (a variation of one approvable base request, `base`)
plus its expected verdicts, worked out by hand from docs/fhir-contract.md §5 (never copied from
the engine): the base verdicts are listed once in BASE_EXPECTED and each case states what changes
and why. Everything here is synthetic.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CASES = ROOT / "cases"

P = "https://w3id.org/necessity/fhir/CodeSystem/"
SYS = {
    "CPT": "http://www.ama-assn.org/go/cpt", "ICD": "http://hl7.org/fhir/sid/icd-10-cm",
    "SCT": "http://snomed.info/sct", "LOINC": "http://loinc.org",
    "RX": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "DICOM": "http://dicom.nema.org/resources/ontology/DCM", "UCUM": "http://unitsofmeasure.org",
    "anat": P + "spine-anatomy", "zone": P + "spine-zone", "find": P + "spine-finding",
    "obs": P + "esi-observation", "od": P + "esi-order-detail", "care": P + "conservative-care",
    "resp": P + "therapy-response", "pch": P + "pain-character",
}
NS = {
    "CPT": "cpt", "ICD": "icd10cm", "SCT": "snomed", "LOINC": "loinc", "RX": "rxnorm",
    "DICOM": "dicom", "UCUM": "ucum", "anat": "spine-anatomy", "zone": "spine-zone",
    "find": "spine-finding", "obs": "esi-observation", "od": "esi-order-detail",
    "care": "conservative-care", "resp": "therapy-response", "pch": "pain-character",
}
SIDE = {"left": "7771000", "right": "24028007", "bilateral": "51440002"}
RESULT = {"positive": "10828004", "negative": "260385009", "equivocal": "42425007",
          "present": "52101004", "absent": "2667000"}
SEVERITY = {"mild": "255604002", "moderate": "6736007", "severe": "24484000"}
CAT_OBS = "http://terminology.hl7.org/CodeSystem/observation-category"

REFS = ["ESI-CI-1", "ESI-CI-1a", "ESI-CI-2", "ESI-CI-3", "ESI-CI-4", "ESI-LIM-1", "ESI-CI-5",
        "ESI-CI-6", "ESI-LIM-8", "ESI-CI-7", "ESI-CI-8", "ESI-CI-9", "ESI-CI-10", "ESI-CI-11",
        "ESI-LIM-2", "ESI-LIM-3", "ESI-LIM-4", "ESI-LIM-5", "ESI-LIM-6", "ESI-LIM-7",
        "ESI-LIM-10", "ESI-LIM-12", "ESI-LIM-13", "ESI-LIM-9", "ESI-LIM-11", "ESI-PQ", "ESI-BG"]
NA = "not-applicable"

# The base request (approvable): every criterion met, or not applicable where §5.2 says so
# (ESI-CI-7 only for bilateral requests; ESI-CI-8/9 and ESI-LIM-12 only with prior sessions;
# ESI-LIM-9/11, ESI-PQ, ESI-BG are never decided from the Bundle).
BASE_EXPECTED = {r: "met" for r in REFS} | {
    "ESI-CI-7": NA, "ESI-CI-8": NA, "ESI-CI-9": NA, "ESI-LIM-12": NA,
    "ESI-LIM-9": NA, "ESI-LIM-11": NA, "ESI-PQ": NA, "ESI-BG": NA}


def td(days: int) -> timedelta:
    return timedelta(days=days)


def base(D: date = date(2026, 4, 13)) -> dict:
    return dict(
        D=D, authored=D - td(14), roots=["root-L5"], side="left", qty=1, timing=None,
        details=[("DICOM", "RF"), ("od", "contrast"), ("od", "sedation-none"), ("RX", "3264"),
                 ("RX", "6387")],
        conditions=[dict(key="rc", code="M51.17", onset=D - td(120), side="left", rc=True)],
        pain=[dict(value="radicular", side="left", date=D - td(14))],
        scales=[dict(sys="LOINC", code="72514-3", value=7, unit="{score}", date=D - td(10)),
                dict(sys="LOINC", code="97908-8", value=40, unit="%", date=D - td(10))],
        meds=[dict(code="7258", start=D - td(70), end=D - td(28), response="failed")],
        nondrug=[dict(sys="SCT", code="91251008", start=D - td(63), end=D - td(21),
                      response="failed")],
        reports=[dict(code="72148", date=D - td(45), findings=[
            dict(type="disc-herniation", segment="L5-S1", side="left", zone="foraminal",
                 severity="moderate", root="root-L5")])],
        exam=[dict(code="slr", result="positive", side="left", angle=(30, 40)),
              dict(code="motor-strength", value=5, side="bilateral"),
              dict(code="sensory-deficit", result="present", side="left", root="root-L5")],
        procedures=[], other_requests=[], allergies=[],
        careplans=[dict(status="active", start=D - td(14), activities=[
            ("care", "home-exercise-program", "in-progress"), ("SCT", "91251008", "scheduled"),
            ("care", "medication-management", "in-progress")])],
        extra=[], wrap=None,
    )


# ---------------------------------------------------------------------------- the case registry
# Each entry: (case id, spec, expected outcome, verdicts that differ from BASE_EXPECTED, why).
# D = 2026-04-13 unless the spec says otherwise.

CASES_SPEC: list = []


def case(cid, outcome, changes, why, **edit):
    CASES_SPEC.append((cid, edit.pop("spec"), outcome, changes, why))


def spec(fn=None, D=date(2026, 4, 13)):
    s = base(D)
    if fn:
        fn(s)
    return s
