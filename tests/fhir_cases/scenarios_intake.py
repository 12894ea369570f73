"""FHIR cases 48-58: care plans (ESI-CI-10/11), dates at the edges of the evidence window, the
CDS Hooks and Da Vinci PAS wrappers, and resources the conventions do not know.
Registered in `common.CASES_SPEC`."""

from __future__ import annotations

from .common import CAT_OBS, SYS, case, spec, td
from .scenarios_treatment import _c26


def _c48(s):
    s["careplans"] = []


case("fhir-pended-no-care-plan", "pended", {"ESI-CI-10": "missing", "ESI-CI-11": "missing"},
     "No CarePlan, and no in-progress rehabilitation Procedure.", spec=spec(_c48))


def _c49(s):
    s["careplans"][0]["activities"] = [("care", "home-exercise-program", "completed"),
                                       ("SCT", "91251008", "cancelled")]
    s["nondrug"].append(dict(sys="CPT", code="97530", start=s["D"] - td(10), status="in-progress"))


case("fhir-denied-care-plan-nothing-ongoing", "denied", {"ESI-CI-10": "unmet"},
     "The active CarePlan has only completed/cancelled activities (ESI-CI-10 unmet); an "
     "in-progress 97530 Procedure is ongoing rehabilitation, so ESI-CI-11 is met.",
     spec=spec(_c49))


def _c50(s):
    s["careplans"] = [
        dict(status="active", start=s["D"] - td(30), activities=[("care", "medication-management", "in-progress")]),
        dict(status="active", start=s["D"] - td(5), activities=[("CPT", "97112", "not-started")]),
        dict(status="draft", start=s["D"] - td(2), activities=[("care", "functional-restoration", "scheduled")]),
    ]


case("fhir-approved-two-care-plans", "approved", {},
     "Two active plans read together: medication management in progress (conservative, "
     "ESI-CI-10) and 97112 not started (rehabilitation, ESI-CI-11); a draft plan does not count.",
     spec=spec(_c50))


def _c51(s):
    s["meds"][0].update(start=s["D"] - td(18), end=s["D"] + td(20), status="active")
    s["nondrug"][0].update(start=s["D"] - td(20), end=s["D"] + td(30), status="in-progress")


case("fhir-denied-periods-cross-d", "denied", {"ESI-CI-3": "unmet"},
     "Both failed episodes run past D; clipped to D their union is D-20..D = 20 days < 28 "
     "(unclipped it would be 50).", spec=spec(_c51))


def _c52(s):
    s["conditions"][0]["onset"] = s["D"] + td(3)


case("fhir-pended-onset-after-d", "pended", {"ESI-CI-3": "missing"},
     "The only RC onset is after D: ignored (rule 6); the RC still counts for ESI-CI-1a.",
     spec=spec(_c52))


def _c53(s):
    s["wrap"] = "cds"
    s["meds"][0]["code"] = "140587"


case("fhir-cds-approved", "approved", {},
     "The base request (celecoxib) sent as a CDS Hooks order-sign request.", spec=spec(_c53))


def _c54(s):
    s["wrap"] = "cds"
    s["careplans"] = []
    s["other_requests"] = [dict(code="64635")]


case("fhir-cds-denied-same-day-rfa", "denied",
     {"ESI-LIM-3": "unmet", "ESI-CI-10": "missing", "ESI-CI-11": "missing"},
     "CDS Hooks: a same-day facet RFA draft order (64635) beside the ESI; no care plan.",
     spec=spec(_c54))


def _c55(s):
    s["wrap"] = "pas"
    s["meds"][0]["code"] = "5640"


case("fhir-pas-approved", "approved", {},
     "The base request (ibuprofen) sent as a Da Vinci PAS request Bundle.", spec=spec(_c55))


def _c56(s):
    s["wrap"] = "pas"
    s["scales"] = []


case("fhir-pas-pended-no-scale", "pended", {"ESI-CI-2": "missing"},
     "PAS request without any pain or function scale.", spec=spec(_c56))


def _c57(s):
    s["no_occurrence"] = True
    s["authored"] = s["D"]
    s["extra"] = [
        {"resourceType": "Observation", "status": "final",
         "category": [{"coding": [{"system": CAT_OBS, "code": "vital-signs"}]}],
         "code": {"coding": [{"system": SYS["LOINC"], "code": "8310-5", "display": "Body temperature"}]},
         "subject": {}, "effectiveDateTime": "2026-04-01",
         "valueQuantity": {"value": 36.8, "unit": "Cel", "system": SYS["UCUM"], "code": "Cel"}},
        {"resourceType": "Immunization", "status": "completed",
         "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
         "patient": {}, "occurrenceDateTime": "2025-10-01"},
    ]


case("fhir-approved-authored-on-unrecognised", "approved", {},
     "No occurrence[x]: D = authoredOn. A body temperature Observation and an Immunization are "
     "not known to the conventions: kept as unrecognised items, they decide nothing.",
     spec=spec(_c57))


def _c58(s):
    _c26(s)
    s["conditions"][0]["side"] = None
    s["pain"][0]["side"] = None


case("fhir-pended-bilateral-no-symptom-side", "pended",
     {"ESI-CI-1": "missing", "ESI-CI-7": "missing"},
     "Bilateral L5 with concordant findings on both sides, but neither the RC nor the "
     "pain-character gives a laterality: no symptom side, so ESI-CI-1 and ESI-CI-7 are missing "
     "(rule 1).", spec=spec(_c58))
