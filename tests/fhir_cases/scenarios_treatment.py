"""FHIR cases 13-35: conservative care (ESI-CI-3), guidance and contrast (ESI-CI-4/5),
injectate, levels and laterality (ESI-CI-6/7), same-day procedures, sedation, series and
contraindications (ESI-LIM-*). Registered in `common.CASES_SPEC`."""

from __future__ import annotations

from .common import case, spec, td


def _c13(s):
    s["meds"][0].update(start=s["D"] - td(40), end=s["D"] - td(30))
    s["nondrug"][0].update(start=s["D"] - td(35), end=s["D"] - td(21))


case("fhir-denied-conservative-19-days", "denied", {"ESI-CI-3": "unmet"},
     "Both episodes failed, but the union of their periods is D-40..D-21 = 19 days < 28; no "
     "intolerance: neither FAIL nor INTOL.", spec=spec(_c13))


def _c14(s):
    s["meds"] = [dict(code="10689", start=s["D"] - td(30), end=s["D"] - td(25), response="intolerant")]
    s["nondrug"] = []


case("fhir-approved-intolerant", "approved", {},
     "One tramadol episode answered intolerant, none improved: INTOL (no length needed).",
     spec=spec(_c14))


def _c15(s):
    s["nondrug"][0]["response"] = "improved"


case("fhir-denied-pt-improved", "denied", {"ESI-CI-3": "unmet"},
     "Naproxen failed but PT improved: FAIL needs a failed/partial non-drug episode; INTOL needs "
     "an intolerant one: neither.", spec=spec(_c15))


def _c16(s):
    s["meds"][0]["response"] = None
    s["nondrug"][0]["response"] = None


case("fhir-pended-no-therapy-response", "pended", {"ESI-CI-3": "missing"},
     "Episodes are documented but none has a therapy-response Observation.", spec=spec(_c16))


def _c17(s):
    s["details"] = [("DICOM", "US"), ("od", "no-contrast"), ("RX", "3264")]


case("fhir-denied-ultrasound-no-contrast", "denied",
     {"ESI-CI-4": "unmet", "ESI-LIM-1": "unmet", "ESI-CI-5": "unmet"},
     "Ultrasound guidance and no-contrast without a contrast contraindication.", spec=spec(_c17))


def _c18(s):
    s["details"] = [("DICOM", "US"), ("od", "no-contrast"), ("RX", "6902")]
    s["allergies"] = [dict(code="293637006")]


case("fhir-approved-ultrasound-contrast-allergy", "approved", {},
     "Ultrasound and no-contrast are justified by an active confirmed contrast-media allergy "
     "(SNOMED 293637006); methylprednisolone injectate.", spec=spec(_c18))


def _c19(s):
    s["details"] = [("DICOM", "RF"), ("DICOM", "CT"), ("od", "contrast"), ("RX", "3264")]


case("fhir-pended-two-guidance-modalities", "pended",
     {"ESI-CI-4": "missing", "ESI-LIM-1": "missing"},
     "RF and CT both listed: ambiguous guidance (rule 10). Contrast is stated, so ESI-CI-5 is met.",
     spec=spec(_c19))


def _c20(s):
    s["details"] = [("DICOM", "RF"), ("od", "contrast"), ("od", "no-contrast"), ("RX", "3264")]


case("fhir-pended-contrast-ambiguous", "pended", {"ESI-CI-5": "missing"},
     "Both contrast and no-contrast: ESI-CI-5 missing (injectate has a corticosteroid).",
     spec=spec(_c20))


def _c21(s):
    s["details"] = [("DICOM", "RF"), ("od", "contrast"), ("RX", "6387")]


case("fhir-denied-anesthetic-only", "denied", {"ESI-CI-5": "unmet"},
     "Injectate lidocaine listed with no corticosteroid.", spec=spec(_c21))


def _c22(s):
    s["details"] = [("DICOM", "RF"), ("od", "contrast"), ("RX", "3264"),
                    ("od", "biologic-injectate", "platelet-rich plasma")]


case("fhir-denied-biologic-injectate", "denied", {"ESI-LIM-2": "unmet"},
     "biologic-injectate (PRP) is listed; dexamethasone is too, so ESI-CI-5 stays met.",
     spec=spec(_c22))


def _c23(s):
    s["roots"], s["qty"] = ["root-L4", "root-L5"], 2
    s["reports"][0]["findings"].append(dict(type="foraminal-stenosis", segment="L4-L5",
                                            side="left", severity="mild"))
    s["other_requests"] = [dict(code="64484", based_on=True, qty=1, roots=["root-L5"])]


case("fhir-approved-two-levels", "approved", {},
     "Left L4 + L5, quantity 2 (+ 64484 companion): N = 2. L4 exits at L4-L5 (foraminal "
     "stenosis, implicit zone foraminal); L5 as in the base.", spec=spec(_c23))


def _c24(s):
    s["roots"], s["qty"] = [], None


case("fhir-pended-no-level", "pended", {"ESI-CI-6": "missing", "ESI-LIM-8": "missing"},
     "No root in bodySite and no quantity: N = 0. R is empty, so no (root, side) pair lacks a "
     "concordant finding: ESI-CI-1 met; ESI-LIM-7 met (no code outside L1-S2).", spec=spec(_c24))


def _c25(s):
    s["side"] = "bilateral"
    s["reports"][0]["findings"] = [dict(type="disc-herniation", segment="L4-L5", side="bilateral",
                                        zone="paracentral", severity="moderate")]


case("fhir-denied-bilateral-left-symptoms", "denied", {"ESI-CI-1": "unmet", "ESI-CI-7": "unmet"},
     "Bilateral L5 (concordant on both sides: L4-L5 paracentral, bilateral) but symptoms are "
     "left only: S = {left, right} is not within the symptom sides, and ESI-CI-7 is unmet.",
     spec=spec(_c25))


def _c26(s):
    s["side"] = "bilateral"
    s["conditions"][0]["side"] = "bilateral"
    s["pain"][0]["side"] = "bilateral"
    s["reports"][0]["findings"] = [
        dict(type="foraminal-stenosis", segment="L5-S1", side="left", severity="moderate"),
        dict(type="foraminal-stenosis", segment="L5-S1", side="right", severity="mild")]


case("fhir-approved-bilateral", "approved", {"ESI-CI-7": "met"},
     "Bilateral L5, one root on both sides = 1 level; bilateral symptoms; left and right L5-S1 "
     "foraminal stenoses (exiting L5) on each side.", spec=spec(_c26))


def _c27(s):
    s["other_requests"] = [dict(code="64493", roots=[])]


case("fhir-denied-same-day-facet", "denied", {"ESI-LIM-3": "unmet"},
     "A facet injection (64493) ServiceRequest on the same date D, no synovial-cyst detail.",
     spec=spec(_c27))


def _c28(s):
    s["other_requests"] = [dict(code="64493", details=[("od", "facet-synovial-cyst")]),
                           dict(code="20552", date=s["D"] + td(7)),
                           dict(code="64445", status="revoked")]


case("fhir-approved-same-day-facet-cyst", "approved", {},
     "Same-day facet request carries facet-synovial-cyst (exception); a trigger-point request is "
     "on another date; a revoked sciatic block request does not count (§1 rule 6).",
     spec=spec(_c28))


def _c29(s):
    s["details"] = [("DICOM", "RF"), ("od", "contrast"), ("RX", "3264"), ("od", "moderate-sedation")]


case("fhir-denied-sedation-unjustified", "denied", {"ESI-LIM-4": "unmet"},
     "Moderate sedation without a sedation-justification detail.", spec=spec(_c29))


def _c30(s):
    s["details"] = [("DICOM", "RF"), ("od", "contrast"), ("RX", "3264"), ("od", "mac"),
                    ("od", "sedation-justification", "Severe claustrophobia and prior vasovagal syncope during injections")]


case("fhir-approved-sedation-justified", "approved", {},
     "MAC with a sedation-justification detail carrying the patient-specific reason.",
     spec=spec(_c30))


def _c31(s):
    s["roots"] = ["root-L5", "L5-S1"]


case("fhir-denied-segment-as-root", "denied", {"ESI-LIM-7": "unmet", "ESI-CI-1": "unmet"},
     "bodySite lists the segment L5-S1 beside root-L5: R = {root-L5, L5-S1}; a segment is not a "
     "root (ESI-LIM-7 unmet) and (L5-S1, left) has no concordant finding. N = max(2, 1) = 2.",
     spec=spec(_c31))


def _c32(s):
    s["timing"] = {"event": [(s["D"] + td(14)).isoformat(), s["D"].isoformat()],
                   "repeat": {"count": 3, "period": 2, "periodUnit": "wk"}}


case("fhir-denied-series-of-three", "denied", {"ESI-LIM-10": "unmet"},
     "occurrenceTiming.repeat.count = 3: a predetermined series. D = earliest event.",
     spec=spec(_c32))


def _c33(s):
    s["conditions"].append(dict(key="cancer", code="C79.51", onset=s["D"] - td(200)))


case("fhir-denied-cancer", "denied", {"ESI-LIM-13": "unmet"},
     "Active C79.51 (secondary malignant neoplasm of bone): cancer prefix C.", spec=spec(_c33))


def _c34(s):
    s["reports"][0]["findings"].append(dict(type="epidural-abscess", segment="L4-L5"))


case("fhir-denied-epidural-abscess", "denied", {"ESI-LIM-13": "unmet"},
     "Imaging report codes an epidural abscess, Present.", spec=spec(_c34))


def _c35(s):
    s["conditions"].append(dict(key="osteomyelitis", code="M46.26", onset=s["D"] - td(60),
                                verification="refuted"))
    s["conditions"].append(dict(key="old-cancer", code="C61", onset=s["D"] - td(3000),
                                clinical="resolved"))
    s["reports"].append(dict(code="72148", date=s["D"] - td(5), status="preliminary",
                             findings=[dict(type="suspected-neoplasm", segment="L3-L4")]))


case("fhir-approved-contraindications-not-counted", "approved", {},
     "Refuted vertebral osteomyelitis, resolved prostate cancer and a preliminary MRI with a "
     "suspected neoplasm: none counts (§1 rule 6), so ESI-LIM-13 is met.", spec=spec(_c35))
