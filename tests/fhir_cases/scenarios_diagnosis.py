"""FHIR cases 1-12: the diagnosis, imaging and exam concordance (ESI-CI-1, ESI-CI-1a), the
scales (ESI-CI-2) and the pain duration (ESI-CI-3). Registered in `common.CASES_SPEC`."""

from __future__ import annotations

from .common import case, spec, td


# 1. approvable variant: right S1, CT, traversing (paracentral) finding, triamcinolone, VAS,
#    gabapentin + CPT 97110, provisional postlaminectomy diagnosis.
def _c1(s):
    s["roots"], s["side"] = ["root-S1"], "right"
    s["details"] = [("DICOM", "CT"), ("od", "contrast"), ("RX", "10759")]
    s["conditions"] = [dict(key="rc", code="M96.1", onset=s["D"] - td(400), side="right", rc=True,
                            verification="provisional")]
    s["pain"] = [dict(value="radicular", side="right", date=s["D"] - td(14))]
    s["scales"] = [dict(sys="LOINC", code="38214-3", value=8, unit="{score}", date=s["D"] - td(20))]
    s["meds"] = [dict(code="25480", start=s["D"] - td(90), end=s["D"] - td(30), response="partial")]
    s["nondrug"] = [dict(sys="CPT", code="97110", start=s["D"] - td(80), end=s["D"] - td(40),
                         response="failed")]
    s["reports"][0]["code"] = "72131"
    s["reports"][0]["findings"] = [dict(type="disc-herniation", segment="L5-S1", side="right",
                                        zone="paracentral", severity="severe")]
    s["exam"] = [dict(code="slr", result="positive", side="right"),
                 dict(code="reflex", value=1, side="right")]


case("fhir-approved-right-s1-ct", "approved", {},
     "Right S1 traversed at L5-S1 (paracentral, no affected-root: table route); CT + contrast + "
     "triamcinolone; M96.1 provisional counts (bucket B); FAIL: gabapentin partial + 97110 failed, "
     "union 60 days.", spec=spec(_c1))


def _c2(s):
    s["reports"][0]["findings"] = [dict(type="disc-herniation", segment="L5-S1", side="right",
                                        zone="foraminal", root="root-L5")]


case("fhir-denied-imaging-wrong-side", "denied", {"ESI-CI-1": "unmet"},
     "Left L5 requested; the only compressive finding is right-sided: (L5, left) lacks a "
     "concordant finding.", spec=spec(_c2))


def _c3(s):
    s["side"] = "right"
    s["reports"][0]["findings"] = [dict(type="central-canal-stenosis", segment="L4-L5",
                                        side="bilateral", zone="central", severity="moderate")]


case("fhir-denied-side-not-symptomatic", "denied", {"ESI-CI-1": "unmet"},
     "Right L5 requested, concordant (L4-L5 central canal stenosis, implicit zone central, "
     "traversing L5), but symptom sides are left only: S not within the symptom sides.",
     spec=spec(_c3))


def _c4(s):
    s["reports"] = []


case("fhir-pended-no-imaging", "pended", {"ESI-CI-1": "missing"},
     "No imaging report dated <= D.", spec=spec(_c4))


def _c5(s):
    s["exam"] = []


case("fhir-pended-no-exam", "pended", {"ESI-CI-1": "missing"},
     "No §4.8 exam Observation (pain-character is §4.4, not an exam test).", spec=spec(_c5))


def _c6(s):
    s["conditions"][0]["code"] = "M54.50"


case("fhir-denied-axial-diagnosis", "denied", {"ESI-CI-1a": "unmet", "ESI-LIM-5": "unmet"},
     "The only RC is M54.50 (axial/excluded): not in buckets A-C, and all RC codes axial.",
     spec=spec(_c6))


def _c7(s):
    s["conditions"][0]["rc"] = False


case("fhir-pended-no-reason-condition", "pended",
     {"ESI-CI-1a": "missing", "ESI-LIM-5": "missing", "ESI-CI-3": "missing"},
     "The request has no reasonReference: no RC, so no RC code and no RC onset (pain duration "
     "unknown). Symptom side still comes from the pain-character (left).", spec=spec(_c7))


def _c8(s):
    s["conditions"][0]["rc"] = False
    s["pain"] = [dict(value="radicular", side="left", date=s["D"] - td(7)),
                 dict(value="axial", side="left", date=s["D"] - td(7))]


case("fhir-denied-axial-pain-no-rc", "denied",
     {"ESI-CI-1a": "missing", "ESI-LIM-5": "unmet", "ESI-CI-3": "missing"},
     "No RC; two pain-character assessments on the same latest date, radicular and axial: axial "
     "wins the tie (rule 7) and makes ESI-LIM-5 unmet even without RC (rule 2).", spec=spec(_c8))


def _c9(s):
    s["scales"] = [dict(sys="LOINC", code="72514-3", value=7, unit="{score}", date=s["D"] + td(1)),
                   dict(sys="obs", code="rmdq", value=14, unit="{score}",
                        date=s["D"] - td(3), status="preliminary")]


case("fhir-pended-scale-after-d", "pended", {"ESI-CI-2": "missing"},
     "The NRS is dated D+1 (after D) and the RMDQ is preliminary (not counted, §1 rule 6): no "
     "accepted scale dated <= D.", spec=spec(_c9))


def _c10(s):
    s["conditions"][0]["onset"] = s["D"] - td(27)


case("fhir-denied-pain-27-days", "denied", {"ESI-CI-3": "unmet"},
     "Pain duration D - onset = 27 days < 28 (bucket A, no zoster waiver).", spec=spec(_c10))


def _c11(s):
    s["conditions"][0]["onset"] = s["D"] - td(28)
    s["meds"][0]["code"] = "187832"
    s["scales"] = [dict(sys="obs", code="rmdq", value=15, unit="{score}", date=s["D"] - td(2))]


case("fhir-approved-pain-exactly-28-days", "approved", {},
     "Pain duration exactly 28 days (not < 28); pregabalin; RMDQ baseline.", spec=spec(_c11))


def _c12(s):
    s["conditions"] = [dict(key="rc", code="B02.29", onset=s["D"] - td(10), side="left", rc=True)]
    s["meds"] = [dict(code="25480", start=s["D"] - td(9), end=s["D"] - td(2), response="failed")]
    s["nondrug"] = [dict(sys="care", code="heat-cold-therapy", start=s["D"] - td(8),
                         end=s["D"] - td(3), response="partial")]


case("fhir-approved-zoster-short", "approved", {},
     "RC B02.29 (bucket C): the 28-day pain duration and FAIL's 28-day coverage are waived; "
     "gabapentin failed + heat/cold partial (7 days) is FAIL.", spec=spec(_c12))
