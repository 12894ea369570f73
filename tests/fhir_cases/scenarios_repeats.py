"""FHIR cases 36-47: repeat injections, the response to prior sessions and the session limits
(ESI-CI-8/9, ESI-LIM-6, ESI-LIM-12). Registered in `common.CASES_SPEC`."""

from __future__ import annotations

from datetime import date

from .common import case, spec, td


def _prior(s, days_before, pct=None, dur=None, fn=None, code="64483", status="completed",
           response=True, roots=("root-L5",)):
    pr = dict(code=code, date=s["D"] - td(days_before), roots=list(roots), side="left",
              status=status)
    if response:
        # assessed two weeks after the injection, and never after D (§1 rule 7)
        pr["response"] = dict(pct=pct, dur=dur, fn=fn,
                              date=min(s["D"] - td(days_before) + td(14), s["D"] - td(1)))
    s["procedures"].append(pr)


def _early_scale(s, days_before):
    s["scales"].append(dict(sys="LOINC", code="72514-3", value=8, unit="{score}",
                            date=s["D"] - td(days_before)))


def _c36(s):
    _early_scale(s, 200)
    _prior(s, 150, pct=70, dur=(4, "mo"))


case("fhir-approved-repeat-responder", "approved", {"ESI-CI-8": "met"},
     "One prior session in W (D-150), 70% relief for 4 months = 120 days >= 90. NRS D-200 "
     "precedes the session (ESI-CI-2).", spec=spec(_c36))


def _c37(s):
    _early_scale(s, 200)
    _prior(s, 150, pct=60, dur=(6, "wk"))


case("fhir-denied-repeat-short-relief", "denied", {"ESI-CI-8": "unmet"},
     "Prior session: 60% relief for 6 weeks = 42 days < 90, no function improvement.",
     spec=spec(_c37))


def _c38(s):
    _early_scale(s, 200)
    _prior(s, 150, pct=60)


case("fhir-pended-repeat-no-duration", "pended", {"ESI-CI-8": "missing"},
     "Prior session: 60% relief, duration not given, no function figure (rule 4).",
     spec=spec(_c38))


def _c39(s):
    _early_scale(s, 200)
    _prior(s, 150, pct=30, dur=(2, "wk"), fn=55)


case("fhir-approved-repeat-function-responder", "approved", {"ESI-CI-8": "met"},
     "Prior session: 30% relief for 2 weeks but 55% function improvement: responder (fn >= 50).",
     spec=spec(_c39))


def _c40(s):
    _early_scale(s, 200)
    _prior(s, 60, pct=20)


case("fhir-denied-nonresponder-unchanged", "denied",
     {"ESI-CI-8": "unmet", "ESI-CI-9": "unmet"},
     "Prior session 60 days ago, 20% relief: non-responder; no changed-level/approach/medication "
     "(ESI-CI-9 unmet, so ESI-CI-8 unmet).", spec=spec(_c40))


def _c41(s):
    _early_scale(s, 200)
    _prior(s, 30, pct=20, fn=10, roots=("root-L4",))
    s["details"].append(("od", "changed-level", "First injection at L4 gave no relief; imaging points to L5"))


case("fhir-approved-nonresponder-changed-level", "approved",
     {"ESI-CI-8": "met", "ESI-CI-9": "met"},
     "Prior L4 session 30 days ago, 20% relief and 10% function: non-responder; changed-level "
     "stated and D - L = 30 >= 14: ESI-CI-9 met, hence ESI-CI-8 met.", spec=spec(_c41))


def _c42(s):
    _early_scale(s, 200)
    _prior(s, 13, pct=10)
    s["details"].append(("od", "changed-approach", "Switching to an interlaminar-adjacent approach"))


case("fhir-denied-nonresponder-13-days", "denied",
     {"ESI-CI-8": "unmet", "ESI-CI-9": "unmet"},
     "Non-responder with a changed approach, but D - L = 13 days < 14.", spec=spec(_c42))


def _c43(s):
    _early_scale(s, 200)
    _prior(s, 90, dur=(3, "mo"))


case("fhir-pended-response-without-percentages", "pended", {"ESI-CI-8": "missing"},
     "The only esi-response has a duration but neither percentage: not counted (rule 3), so L "
     "has no response.", spec=spec(_c43))


def _c44(s):
    _early_scale(s, 340)
    _prior(s, 300, pct=80, dur=(5, "mo"))
    _prior(s, 200, pct=80, dur=(5, "mo"))
    _prior(s, 150, pct=75, dur=(4, "mo"))
    _prior(s, 150, pct=75, dur=(4, "mo"), code="64484")
    _prior(s, 100, pct=80, dur=(4, "mo"))


case("fhir-denied-fifth-session", "denied", {"ESI-LIM-6": "unmet", "ESI-CI-8": "met"},
     "Four sessions in W (D-300, D-200, D-150 with 64483 + 64484 on one date = one session, "
     "D-100): the request would be the 5th. L = D-100, 80% for 4 months: ESI-CI-8 met.",
     spec=spec(_c44))


def _c45(s):
    # D = 29 Feb 2028; D - 12 months = 28 Feb 2027 (outside W); D - 24 months = 28 Feb 2026.
    s["scales"].append(dict(sys="LOINC", code="97908-8", value=44, unit="%",
                            date=date(2026, 2, 1)))
    for when in (date(2027, 2, 28), date(2027, 3, 1), date(2027, 7, 1), date(2027, 11, 1)):
        s["procedures"].append(dict(code="64483", date=when, roots=["root-L5"], side="left",
                                    response=dict(pct=80, dur=(1, "a"), date=when + td(20))))
    s["details"] += [("od", "rationale-declines-surgery", "Declines decompression surgery"),
                     ("od", "pcp-notified")]


case("fhir-approved-29-feb-window-edge", "approved",
     {"ESI-CI-8": "met", "ESI-LIM-12": "met"},
     "D = 2028-02-29; D - 12 months = 2027-02-28, so the session that day is outside W (it is in "
     "the previous 12 months, which makes ESI-LIM-12 applicable); W holds 3 sessions (LIM-6 met). "
     "L = 2027-11-01, 80% for 1 year = 365 days: responder. ODI (function scale) 2026-02-01 <= D "
     "and before the earliest W session; rationale and pcp-notified given.",
     spec=spec(_c45, D=date(2028, 2, 29)))


def _c46(s):
    _early_scale(s, 500)
    _prior(s, 400, pct=80, dur=(6, "mo"))
    _prior(s, 120, pct=70, dur=(4, "mo"))
    s["details"].append(("od", "rationale-high-surgical-risk", "ASA IV; cardiology advises against surgery"))


case("fhir-pended-beyond-12-months-no-pcp", "pended", {"ESI-CI-8": "met", "ESI-LIM-12": "missing"},
     "Sessions at D-400 (previous 12 months) and D-120 (W): ESI-LIM-12 applies; rationale given "
     "but no pcp-notified. ODI at D-10 is the function scale.", spec=spec(_c46))


def _c47(s):
    _early_scale(s, 500)
    _prior(s, 400, pct=80, dur=(6, "mo"))
    _prior(s, 60, pct=30, fn=20)
    s["details"] += [("od", "changed-medication", "Switching to triamcinolone"),
                     ("RX", "10759"), ("od", "rationale-recurrence-responsive"), ("od", "pcp-notified")]


case("fhir-denied-beyond-12-months-nonresponder", "denied",
     {"ESI-CI-8": "met", "ESI-CI-9": "met", "ESI-LIM-12": "unmet"},
     "Sessions in the previous 12 months and in W; L (D-60) is a non-responder (30%, fn 20%): the "
     "changed medication satisfies ESI-CI-9/8, but ESI-LIM-12 is unmet for a non-responder.",
     spec=spec(_c47))
