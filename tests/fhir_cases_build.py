"""Writes the FHIR cases `cases/fhir-*/` (bundle.json, expected.json, some case.ttl).

    python tests/fhir_cases_build.py          # (re)write every case folder

Each case is a short *spec* of clinical facts (a variation of one approvable base request) plus
its expected verdicts, worked out by hand from docs/fhir-contract.md §5 (never copied from the
engine): the base verdicts are listed once in BASE_EXPECTED and each case states what changes
and why. The spec is emitted as a FHIR R4 collection Bundle (or wrapped as a CDS Hooks request
or a Da Vinci PAS request Bundle) and, for the cases in TURTLE, as the same case written
directly in the case vocabulary (independently of the FHIR mapper) for the equivalence test.
The four worked examples of the contract live in `cases/fhir-example-*/bundle.json` (written by
hand, not by this script); this script writes their expected verdicts beside them.

Everything here is synthetic. CPT codes carry no display (AMA descriptors are licensed).
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


# ---------------------------------------------------------------------------- FHIR emitter


def cc(sys: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    coding = {"system": SYS[sys], "code": code}
    if display and sys != "CPT":
        coding["display"] = display
    out = {"coding": [coding]}
    if text:
        out["text"] = text
    return out


def comp(name: str, **value) -> dict:
    return {"code": cc("obs", name), **value}


def qty(value, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": SYS["UCUM"], "code": unit}


class Bundler:
    def __init__(self, case_id: str):
        self.case_id = case_id
        self.entries: list[dict] = []

    def url(self, key: str) -> str:
        return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.case_id}/{key}"))

    def add(self, key: str, resource: dict) -> str:
        url = self.url(key)
        self.entries.append({"fullUrl": url, "resource": resource})
        return url


def to_fhir(case_id: str, s: dict) -> dict:
    b = Bundler(case_id)
    D = s["D"]
    pat = b.url("patient")
    subj = {"reference": pat}
    b.add("patient", {"resourceType": "Patient", "gender": s.get("gender", "female"),
                      "birthDate": s.get("birth", "1971-05-20"),
                      "name": [{"family": "Synthetic", "given": [case_id]}]})
    doc = b.add("practitioner", {"resourceType": "Practitioner",
                                 "name": [{"family": "Okafor", "given": ["Ada"], "prefix": ["Dr."]}]})
    cond_url = {}
    for i, c in enumerate(s["conditions"]):
        key = c.get("key", f"condition-{i}")
        r = {"resourceType": "Condition",
             "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                            "code": c.get("clinical", "active")}]},
             "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                "code": c.get("verification", "confirmed")}]},
             "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                       "code": c.get("category", "encounter-diagnosis")}]}],
             "code": cc(c.get("system", "ICD"), c["code"]), "subject": subj,
             "recordedDate": (D - td(14)).isoformat()}
        if c.get("side"):
            r["bodySite"] = [cc("SCT", SIDE[c["side"]])]
        if c.get("onset"):
            r["onsetDateTime"] = c["onset"].isoformat()
        cond_url[key] = b.add(key, r)
    for i, p in enumerate(s["pain"]):
        r = {"resourceType": "Observation", "status": p.get("status", "final"),
             "category": [{"coding": [{"system": CAT_OBS, "code": "exam"}]}],
             "code": cc("obs", "pain-character"), "subject": subj,
             "effectiveDateTime": p["date"].isoformat(),
             "valueCodeableConcept": cc("pch", p["value"])}
        if p.get("side"):
            r["component"] = [comp("laterality", valueCodeableConcept=cc("SCT", SIDE[p["side"]]))]
        b.add(f"pain-{i}", r)
    for i, sc in enumerate(s["scales"]):
        b.add(f"scale-{i}", {"resourceType": "Observation", "status": sc.get("status", "final"),
                             "category": [{"coding": [{"system": CAT_OBS, "code": "survey"}]}],
                             "code": cc(sc["sys"], sc["code"]), "subject": subj,
                             "effectiveDateTime": sc["date"].isoformat(),
                             "valueQuantity": qty(sc["value"], sc["unit"])})

    def response(key, focus_url, resp, when):
        b.add(key, {"resourceType": "Observation", "status": "final",
                    "category": [{"coding": [{"system": CAT_OBS, "code": "therapy"}]}],
                    "code": cc("obs", "therapy-response"), "subject": subj,
                    "focus": [{"reference": focus_url}], "effectiveDateTime": when.isoformat(),
                    "valueCodeableConcept": cc("resp", resp)})

    rc_refs = [{"reference": cond_url[c.get("key", f"condition-{i}")]}
               for i, c in enumerate(s["conditions"]) if c.get("rc")]
    for i, m in enumerate(s["meds"]):
        period = {"start": m["start"].isoformat()}
        if m.get("end"):
            period["end"] = m["end"].isoformat()
        r = {"resourceType": "MedicationStatement", "status": m.get("status", "completed"),
             "medicationCodeableConcept": cc("RX", m["code"]), "subject": subj,
             "effectivePeriod": period}
        if rc_refs:
            r["reasonReference"] = rc_refs[:1]
        url = b.add(f"med-{i}", r)
        if m.get("response"):
            response(f"med-{i}-response", url, m["response"], min(m.get("end") or D, D))
    for i, n in enumerate(s["nondrug"]):
        period = {"start": n["start"].isoformat()}
        if n.get("end"):
            period["end"] = n["end"].isoformat()
        r = {"resourceType": "Procedure", "status": n.get("status", "completed"),
             "code": cc(n["sys"], n["code"]), "subject": subj, "performedPeriod": period}
        url = b.add(f"nondrug-{i}", r)
        if n.get("response"):
            response(f"nondrug-{i}-response", url, n["response"], min(n.get("end") or D, D))
    for i, rep in enumerate(s["reports"]):
        results = []
        for j, f in enumerate(rep["findings"]):
            r = {"resourceType": "Observation", "status": f.get("status", "final"),
                 "category": [{"coding": [{"system": CAT_OBS, "code": "imaging"}]}],
                 "code": cc("find", f["type"]), "subject": subj,
                 "effectiveDateTime": rep["date"].isoformat(),
                 "valueCodeableConcept": cc("SCT", RESULT[f.get("presence", "present")])}
            if f.get("segment"):
                r["bodySite"] = cc("anat", f["segment"])
            comps = []
            if f.get("side"):
                comps.append(comp("laterality", valueCodeableConcept=cc("SCT", SIDE[f["side"]])))
            if f.get("zone"):
                comps.append(comp("zone", valueCodeableConcept=cc("zone", f["zone"])))
            if f.get("severity"):
                comps.append(comp("severity", valueCodeableConcept=cc("SCT", SEVERITY[f["severity"]])))
            if f.get("root"):
                comps.append(comp("affected-root", valueCodeableConcept=cc("anat", f["root"])))
            if comps:
                r["component"] = comps
            results.append({"reference": b.add(f"report-{i}-finding-{j}", r)})
        b.add(f"report-{i}", {
            "resourceType": "DiagnosticReport", "status": rep.get("status", "final"),
            "category": [{"coding": [{"system": SYS["LOINC"], "code": rep.get("category", "LP29684-5")}]}],
            "code": cc("CPT", rep["code"]), "subject": subj,
            "effectiveDateTime": rep["date"].isoformat(), "result": results,
            "conclusion": rep.get("conclusion", "See coded findings.")})
    for i, x in enumerate(s["exam"]):
        r = {"resourceType": "Observation", "status": x.get("status", "final"),
             "category": [{"coding": [{"system": CAT_OBS, "code": "exam"}]}],
             "code": cc("obs", x["code"]), "subject": subj,
             "effectiveDateTime": x.get("date", D - td(14)).isoformat()}
        if "result" in x:
            r["valueCodeableConcept"] = cc("SCT", RESULT[x["result"]])
        else:
            r["valueQuantity"] = qty(x["value"], "{score}")
        comps = []
        if x.get("side"):
            comps.append(comp("laterality", valueCodeableConcept=cc("SCT", SIDE[x["side"]])))
        if x.get("angle"):
            lo, hi = x["angle"]
            comps.append(comp("slr-angle", valueRange={"low": qty(lo, "deg"), "high": qty(hi, "deg")}))
        if x.get("root"):
            comps.append(comp("affected-root", valueCodeableConcept=cc("anat", x["root"])))
        if comps:
            r["component"] = comps
        b.add(f"exam-{i}", r)
    for i, pr in enumerate(s["procedures"]):
        sites = [cc("anat", a) for a in pr.get("roots", [])]
        if pr.get("side"):
            sites.append(cc("SCT", SIDE[pr["side"]]))
        r = {"resourceType": "Procedure", "status": pr.get("status", "completed"),
             "code": cc("CPT", pr["code"]), "subject": subj,
             "performedDateTime": pr["date"].isoformat()}
        if sites:
            r["bodySite"] = sites
        url = b.add(f"procedure-{i}", r)
        rs = pr.get("response")
        if rs:
            comps = []
            if rs.get("pct") is not None:
                comps.append(comp("percent-pain-relief", valueQuantity=qty(rs["pct"], "%")))
            if rs.get("dur") is not None:
                comps.append(comp("relief-duration", valueQuantity=qty(rs["dur"][0], rs["dur"][1])))
            if rs.get("fn") is not None:
                comps.append(comp("percent-function-improvement", valueQuantity=qty(rs["fn"], "%")))
            b.add(f"procedure-{i}-response", {
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": CAT_OBS, "code": "survey"}]}],
                "code": cc("obs", "esi-response"), "subject": subj,
                "focus": [{"reference": url}],
                "effectiveDateTime": rs.get("date", pr["date"] + td(30)).isoformat(),
                "method": cc(*rs.get("method", ("LOINC", "72514-3"))), "component": comps})
    for i, a in enumerate(s["allergies"]):
        b.add(f"allergy-{i}", {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": a.get("clinical", "active")}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                               "code": a.get("verification", "confirmed")}]},
            "code": cc("SCT", a["code"]), "patient": subj})
    for i, cp in enumerate(s["careplans"]):
        r = {"resourceType": "CarePlan", "status": cp.get("status", "active"), "intent": "plan",
             "subject": subj, "period": {"start": cp["start"].isoformat()},
             "activity": [{"detail": {"code": cc(sys_, code), "status": st}}
                          for sys_, code, st in cp["activities"]]}
        if rc_refs:
            r["addresses"] = rc_refs[:1]
        b.add(f"careplan-{i}", r)
    index_url = b.url("request")
    for i, o in enumerate(s["other_requests"]):
        r = {"resourceType": "ServiceRequest", "status": o.get("status", "active"), "intent": "order",
             "code": cc("CPT", o["code"]), "subject": subj,
             "occurrenceDateTime": o.get("date", D).isoformat(),
             "authoredOn": s["authored"].isoformat(), "requester": {"reference": doc}}
        if o.get("based_on"):
            r["basedOn"] = [{"reference": index_url}]
        if o.get("qty") is not None:
            r["quantityQuantity"] = {"value": o["qty"], "unit": "level"}
        if o.get("roots"):
            r["bodySite"] = [cc("anat", a) for a in o["roots"]] + [cc("SCT", SIDE[s["side"]])]
        if o.get("details"):
            r["orderDetail"] = [cc(*d[:2], text=d[2] if len(d) > 2 else None) for d in o["details"]]
        b.add(f"other-request-{i}", r)
    req = {"resourceType": "ServiceRequest", "status": s.get("status", "active"), "intent": "order",
           "code": cc("CPT", "64483", text="Lumbar transforaminal epidural steroid injection"),
           "subject": subj}
    if s.get("timing"):
        req["occurrenceTiming"] = s["timing"]
    elif s.get("period"):
        req["occurrencePeriod"] = {"start": s["D"].isoformat()}
    elif not s.get("no_occurrence"):
        req["occurrenceDateTime"] = s.get("occurrence", D.isoformat())
    req["authoredOn"] = s["authored"].isoformat()
    req["requester"] = {"reference": doc}
    if s.get("qty") is not None:
        req["quantityQuantity"] = {"value": s["qty"], "unit": "level"}
    sites = [cc("anat", a) for a in s["roots"]]
    if s.get("side"):
        sites.append(cc("SCT", SIDE[s["side"]]))
    if sites:
        req["bodySite"] = sites
    if rc_refs:
        req["reasonReference"] = rc_refs
    if s["details"]:
        req["orderDetail"] = [cc(*d[:2], text=d[2] if len(d) > 2 else None) for d in s["details"]]
    b.add("request", req)
    for i, x in enumerate(s["extra"]):
        x = copy.deepcopy(x)
        for k in ("subject", "patient"):
            if k in x:
                x[k] = subj
        b.add(f"extra-{i}", x)
    bundle = {"resourceType": "Bundle",
              "identifier": {"system": "https://w3id.org/necessity/case", "value": case_id},
              "type": "collection", "timestamp": f"{s['authored'].isoformat()}T09:00:00Z",
              "entry": b.entries}
    if s.get("wrap") == "cds":
        return wrap_cds(bundle, index_url, pat, doc)
    if s.get("wrap") == "pas":
        return wrap_pas(case_id, bundle, b, index_url, pat, s)
    return bundle


def wrap_cds(bundle: dict, index_url: str, patient_url: str, doc_url: str) -> dict:
    """The same content as a CDS Hooks order-sign request: the draft orders in context,
    the record in prefetch (patient as a bare resource, the rest as searchset Bundles)."""
    entries = bundle["entry"]
    drafts = [e for e in entries if e["resource"]["resourceType"] == "ServiceRequest"]
    patient = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    pres = dict(patient["resource"], id=patient_url.split(":")[-1])
    groups: dict[str, list] = {}
    for e in entries:
        rt = e["resource"]["resourceType"]
        if rt in ("ServiceRequest", "Patient"):
            continue
        groups.setdefault(rt[0].lower() + rt[1:] + "s", []).append(e)
    prefetch = {"patient": pres}
    for key, es in groups.items():
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(es),
                         "entry": es}
    return {"hook": "order-sign",
            "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, index_url)),
            "fhirServer": "https://ehr.example.org/fhir",
            "context": {"userId": "Practitioner/" + doc_url.split(":")[-1],
                        "patientId": patient_url.split(":")[-1],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": drafts}},
            "prefetch": prefetch}


def wrap_pas(case_id: str, bundle: dict, b: Bundler, index_url: str, patient_url: str, s) -> dict:
    """The same content as a Da Vinci PAS request Bundle: a Claim (use preauthorization) first,
    whose supportingInfo reference every clinical resource and whose item names the request."""
    insurer = b.url("insurer")
    provider = b.url("provider")
    coverage = b.url("coverage")
    clinical = [e for e in bundle["entry"]
                if e["resource"]["resourceType"] not in ("Patient", "Practitioner")
                and e["fullUrl"] != index_url]
    claim = {
        "resourceType": "Claim", "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "preauthorization", "patient": {"reference": patient_url},
        "created": f"{s['authored'].isoformat()}T09:00:00Z",
        "insurer": {"reference": insurer}, "provider": {"reference": provider},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                                 "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage}}],
        "supportingInfo": [
            {"sequence": i + 1,
             "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                                      "code": "info"}]},
             "valueReference": {"reference": e["fullUrl"]}}
            for i, e in enumerate(clinical)],
        "item": [{"sequence": 1, "productOrService": cc("CPT", "64483"),
                  "extension": [{"url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService",
                                 "valueReference": {"reference": index_url}}]}],
    }
    head = [
        {"fullUrl": b.url("claim"), "resource": claim},
        {"fullUrl": insurer, "resource": {"resourceType": "Organization", "name": "Synthetic Medicare Contractor"}},
        {"fullUrl": provider, "resource": {"resourceType": "Organization", "name": "Synthetic Spine Clinic"}},
        {"fullUrl": coverage, "resource": {"resourceType": "Coverage", "status": "active",
                                           "beneficiary": {"reference": patient_url},
                                           "payor": [{"reference": insurer}]}},
    ]
    return dict(bundle, entry=head + bundle["entry"],
                identifier={"system": "https://w3id.org/necessity/case", "value": case_id})


# ---------------------------------------------------------------------------- Turtle emitter


def iri(sys: str, code: str) -> str:
    from urllib.parse import quote

    return f"<https://w3id.org/necessity/code/{NS[sys]}/{quote(code, safe='-._~!$&()*+,;=:@')}>"


def d(x: date) -> str:
    return f'"{x.isoformat()}"^^xsd:date'


def to_turtle(case_id: str, s: dict) -> str:
    """The same case written directly in the case vocabulary (no FHIR), facts derived from
    synthetic source documents."""
    D = s["D"]
    out = [
        f"@prefix : <https://w3id.org/necessity/case/{case_id}/> .",
        "@prefix nr: <https://w3id.org/necessity/ontology#> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
        "@prefix prov: <http://www.w3.org/ns/prov#> .",
        "@prefix dcterms: <http://purl.org/dc/terms/> .",
        "",
        f"# SYNTHETIC. The Turtle form of cases/{case_id}/bundle.json (same facts, no FHIR).",
        "",
        ":case a nr:PriorAuthorizationCase ;",
        f'    rdfs:label "Synthetic case {case_id} (Turtle form)" ;',
        "    nr:patient :patient ; nr:indexRequest :request .",
        "",
        f':note a nr:SourceDocument ; dcterms:title "Spine clinic note" ; dcterms:date {d(s["authored"])} ; nr:section "History and examination" .',
        f':order a nr:SourceDocument ; dcterms:title "Procedure order" ; dcterms:date {d(s["authored"])} ; nr:section "Requested procedure" .',
        ':imaging a nr:SourceDocument ; dcterms:title "Radiology report" ; nr:section "Findings" .',
        "",
        f':patient a nr:Patient ; rdfs:label "Synthetic patient" ; nr:birthDate "{s.get("birth", "1971-05-20")}"^^xsd:date ;',
        f'    nr:administrativeGender "{s.get("gender", "female")}" ; prov:wasDerivedFrom :note .',
        "",
    ]

    def fact(name, cls, label, props, src=":note"):
        lines = [f":{name} a nr:{cls} ;", f'    rdfs:label "{label}" ;', "    nr:subject :patient ;"]
        lines += [f"    {p} {o} ;" for p, o in props]
        lines.append(f"    prov:wasDerivedFrom {src} .")
        out.extend(lines)
        out.append("")

    rcs = []
    for i, c in enumerate(s["conditions"]):
        name = c.get("key", f"condition-{i}")
        props = [("nr:code", iri(c.get("system", "ICD"), c["code"])),
                 ("nr:status", f'"{c.get("clinical", "active")}"')]
        if c.get("onset"):
            props.append(("nr:onsetDate", d(c["onset"])))
        if c.get("side"):
            props.append(("nr:laterality", iri("SCT", SIDE[c["side"]])))
        fact(name, "Diagnosis", f"Diagnosis {c['code']}", props)
        if c.get("rc"):
            rcs.append(name)
    for i, p in enumerate(s["pain"]):
        props = [("nr:code", iri("obs", "pain-character")), ("nr:status", '"final"'),
                 ("nr:effectiveDate", d(p["date"])), ("nr:painCharacter", iri("pch", p["value"]))]
        if p.get("side"):
            props.append(("nr:laterality", iri("SCT", SIDE[p["side"]])))
        fact(f"pain-{i}", "PainCharacterAssessment", f"Pain character {p['value']}", props)
    for i, sc in enumerate(s["scales"]):
        fact(f"scale-{i}", "ScaleAssessment", f"Scale {sc['code']} = {sc['value']}",
             [("nr:code", iri(sc["sys"], sc["code"])), ("nr:status", f'"{sc.get("status", "final")}"'),
              ("nr:value", f'"{sc["value"]}"^^xsd:decimal'), ("nr:unit", iri("UCUM", sc["unit"])),
              ("nr:effectiveDate", d(sc["date"]))])

    def response(name, focus, resp, when):
        fact(name, "TherapyResponseAssessment", f"Response: {resp}",
             [("nr:code", iri("obs", "therapy-response")), ("nr:status", '"final"'),
              ("nr:effectiveDate", d(when)), ("nr:focus", f":{focus}"),
              ("nr:response", iri("resp", resp))])

    for i, m in enumerate(s["meds"]):
        props = [("nr:code", iri("RX", m["code"])), ("nr:status", f'"{m.get("status", "completed")}"'),
                 ("nr:periodStart", d(m["start"]))]
        if m.get("end"):
            props.append(("nr:periodEnd", d(m["end"])))
        fact(f"med-{i}", "MedicationEpisode", f"Medication RxNorm {m['code']}", props)
        if m.get("response"):
            response(f"med-{i}-response", f"med-{i}", m["response"], min(m.get("end") or D, D))
    for i, n in enumerate(s["nondrug"]):
        props = [("nr:code", iri(n["sys"], n["code"])), ("nr:status", f'"{n.get("status", "completed")}"'),
                 ("nr:periodStart", d(n["start"]))]
        if n.get("end"):
            props.append(("nr:periodEnd", d(n["end"])))
        fact(f"nondrug-{i}", "NonDrugTherapyEpisode", f"Non-drug therapy {n['code']}", props)
        if n.get("response"):
            response(f"nondrug-{i}-response", f"nondrug-{i}", n["response"], min(n.get("end") or D, D))
    for i, rep in enumerate(s["reports"]):
        names = []
        for j, f in enumerate(rep["findings"]):
            props = [("nr:code", iri("find", f["type"])), ("nr:status", '"final"'),
                     ("nr:effectiveDate", d(rep["date"])),
                     ("nr:presence", iri("SCT", RESULT[f.get("presence", "present")]))]
            if f.get("segment"):
                props.append(("nr:segment", iri("anat", f["segment"])))
            if f.get("side"):
                props.append(("nr:laterality", iri("SCT", SIDE[f["side"]])))
            if f.get("zone"):
                props.append(("nr:zone", iri("zone", f["zone"])))
            if f.get("severity"):
                props.append(("nr:severity", iri("SCT", SEVERITY[f["severity"]])))
            if f.get("root"):
                props.append(("nr:affectedRoot", iri("anat", f["root"])))
            fact(f"report-{i}-finding-{j}", "ImagingFinding", f"Imaging finding {f['type']}", props, ":imaging")
            names.append(f":report-{i}-finding-{j}")
        props = [("nr:category", iri("LOINC", rep.get("category", "LP29684-5"))),
                 ("nr:code", iri("CPT", rep["code"])), ("nr:status", f'"{rep.get("status", "final")}"'),
                 ("nr:effectiveDate", d(rep["date"]))]
        if names:
            props.append(("nr:hasFinding", " , ".join(names)))
        fact(f"report-{i}", "DiagnosticReport", "Lumbar imaging report", props, ":imaging")
    for i, x in enumerate(s["exam"]):
        props = [("nr:code", iri("obs", x["code"])), ("nr:status", '"final"'),
                 ("nr:effectiveDate", d(x.get("date", D - td(14))))]
        if "result" in x:
            props.append(("nr:result", iri("SCT", RESULT[x["result"]])))
        else:
            props += [("nr:value", f'"{x["value"]}"^^xsd:decimal'), ("nr:unit", iri("UCUM", "{score}"))]
        if x.get("side"):
            props.append(("nr:laterality", iri("SCT", SIDE[x["side"]])))
        if x.get("angle"):
            props += [("nr:angleLow", f'"{x["angle"][0]}"^^xsd:decimal'),
                      ("nr:angleHigh", f'"{x["angle"][1]}"^^xsd:decimal')]
        if x.get("root"):
            props.append(("nr:affectedRoot", iri("anat", x["root"])))
        fact(f"exam-{i}", "ExamFinding", f"Exam {x['code']}", props)
    for i, pr in enumerate(s["procedures"]):
        props = [("nr:code", iri("CPT", pr["code"])), ("nr:status", f'"{pr.get("status", "completed")}"'),
                 ("nr:performedDate", d(pr["date"]))]
        for a in pr.get("roots", []):
            props.append(("nr:nerveRoot" if a.startswith("root-") else "nr:segment", iri("anat", a)))
        if pr.get("side"):
            props.append(("nr:laterality", iri("SCT", SIDE[pr["side"]])))
        fact(f"procedure-{i}", "SpinalProcedure", f"Prior procedure CPT {pr['code']}", props)
        rs = pr.get("response")
        if rs:
            props = [("nr:code", iri("obs", "esi-response")), ("nr:status", '"final"'),
                     ("nr:effectiveDate", d(rs.get("date", pr["date"] + td(30)))),
                     ("nr:focus", f":procedure-{i}"),
                     ("nr:method", iri(*rs.get("method", ("LOINC", "72514-3"))))]
            if rs.get("pct") is not None:
                props.append(("nr:percentPainRelief", f'"{rs["pct"]}"^^xsd:decimal'))
            if rs.get("dur") is not None:
                days = {"d": 1, "wk": 7, "mo": 30, "a": 365}[rs["dur"][1]] * rs["dur"][0]
                props.append(("nr:reliefDurationDays", f'"{days}"^^xsd:decimal'))
            if rs.get("fn") is not None:
                props.append(("nr:percentFunctionImprovement", f'"{rs["fn"]}"^^xsd:decimal'))
            fact(f"procedure-{i}-response", "InjectionResponseAssessment", "ESI response", props)
    for i, a in enumerate(s["allergies"]):
        fact(f"allergy-{i}", "Allergy", f"Allergy SNOMED {a['code']}",
             [("nr:code", iri("SCT", a["code"])), ("nr:status", f'"{a.get("clinical", "active")}"')])
    for i, cp in enumerate(s["careplans"]):
        acts = []
        for j, (sys_, code, st) in enumerate(cp["activities"]):
            out.append(f':careplan-{i}-activity-{j} a nr:PlannedActivity ; rdfs:label "Planned {code} ({st})" ;')
            out.append(f'    nr:code {iri(sys_, code)} ; nr:status "{st}" ; prov:wasDerivedFrom :note .')
            acts.append(f":careplan-{i}-activity-{j}")
        props = [("nr:status", f'"{cp.get("status", "active")}"'), ("nr:periodStart", d(cp["start"]))]
        if rcs:
            props.append(("nr:addresses", f":{rcs[0]}"))
        if acts:
            props.append(("nr:activity", " , ".join(acts)))
        fact(f"careplan-{i}", "CarePlan", "Care plan", props)

    def details(prefix, ds):
        names = []
        for j, dd in enumerate(ds):
            text = f' ; nr:text "{dd[2]}"' if len(dd) > 2 else ""
            out.append(f':{prefix}-detail-{j} a nr:OrderDetail ; rdfs:label "Order detail {dd[1]}" ; '
                       f"nr:code {iri(dd[0], dd[1])}{text} ; prov:wasDerivedFrom :order .")
            names.append(f":{prefix}-detail-{j}")
        return names

    for i, o in enumerate(s["other_requests"]):
        props = [("nr:code", iri("CPT", o["code"])), ("nr:status", f'"{o.get("status", "active")}"'),
                 ("nr:requestedDate", d(o.get("date", D))), ("nr:authoredOn", d(s["authored"]))]
        if o.get("based_on"):
            props.append(("nr:basedOn", ":request"))
        if o.get("qty") is not None:
            props.append(("nr:levelQuantity", str(o["qty"])))
        for a in o.get("roots", []):
            props.append(("nr:nerveRoot", iri("anat", a)))
        names = details(f"other-request-{i}", o.get("details", []))
        if names:
            props.append(("nr:orderDetail", " , ".join(names)))
        fact(f"other-request-{i}", "ServiceRequest", f"Other request CPT {o['code']}", props, ":order")
    props = [("nr:code", iri("CPT", "64483")), ("nr:status", f'"{s.get("status", "active")}"'),
             ("nr:requestedDate", d(D)), ("nr:authoredOn", d(s["authored"])),
             ("nr:requester", '"Dr. Ada Okafor"')]
    if s.get("qty") is not None:
        props.append(("nr:levelQuantity", str(s["qty"])))
    if s.get("timing"):
        props.append(("nr:seriesCount", str(s["timing"]["repeat"]["count"])))
    for a in s["roots"]:
        props.append(("nr:nerveRoot", iri("anat", a)))
    if s.get("side"):
        props.append(("nr:laterality", iri("SCT", SIDE[s["side"]])))
    for rc in rcs:
        props.append(("nr:reasonDiagnosis", f":{rc}"))
    names = details("request", s["details"])
    if names:
        props.append(("nr:orderDetail", " , ".join(names)))
    fact("request", "ServiceRequest", "Requested: lumbar transforaminal ESI (CPT 64483)", props, ":order")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- the cases
# Each entry: (case id, spec changes, expected outcome, verdicts that differ from BASE_EXPECTED,
# why). D = 2026-04-13 unless the spec says otherwise.

CASES_SPEC: list = []


def case(cid, outcome, changes, why, **edit):
    CASES_SPEC.append((cid, edit.pop("spec"), outcome, changes, why))


def spec(fn=None, D=date(2026, 4, 13)):
    s = base(D)
    if fn:
        fn(s)
    return s


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


# cases also written in Turtle (equivalence test)
TURTLE = {"fhir-approved-right-s1-ct", "fhir-denied-imaging-wrong-side",
          "fhir-pended-no-reason-condition", "fhir-denied-ultrasound-no-contrast",
          "fhir-approved-repeat-responder", "fhir-denied-fifth-session",
          "fhir-approved-29-feb-window-edge"}

# ---------------------------------------------------------------------------- examples

EXAMPLES_EXPECTED = {
    "seed-l5-snrb": ("denied", {"ESI-CI-1": "unmet", "ESI-CI-2": "missing", "ESI-CI-4": "missing",
                                "ESI-LIM-1": "missing", "ESI-CI-5": "missing"},
                     "Worked example: ESI-CI-1 unmet (no compressive lesion for left L5); ESI-CI-2, "
                     "ESI-CI-4/LIM-1, ESI-CI-5 missing. Prior 64635/64636/20552/64445 are not ESIs "
                     "(no session in W: ESI-CI-8/9, LIM-12 n/a). S = left only: ESI-CI-7 n/a."),
    "approvable-left-l5": ("approved", {}, "Worked example: all applicable criteria met."),
    "missing-baseline-score": ("pended", {"ESI-CI-2": "missing"},
                               "Worked example: no pain or function scale."),
    "three-levels": ("denied", {"ESI-CI-6": "unmet", "ESI-LIM-8": "unmet"},
                     "Worked example: three roots, N = 3 > 2; imaging concordant for all three."),
}


def outcome_of(verdicts: dict) -> str:
    values = set(verdicts.values())
    return "denied" if "unmet" in values else "pended" if "missing" in values else "approved"


def write(folder: Path, bundle: dict, scenario: str, outcome: str, changes: dict, ttl: str | None):
    verdicts = dict(BASE_EXPECTED, **changes)
    assert outcome_of(verdicts) == outcome, (folder.name, outcome, changes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundle.json").write_text(json.dumps(bundle, indent=1) + "\n")
    expected = {"scenario": scenario, "source": "FHIR R4 (docs/fhir-contract.md); verdicts worked "
                "out by hand from docs/fhir-contract.md §5 and docs/policies/lcd-l39240.md",
                "expected": {"lcd-l39240": {"outcome": outcome, "criteria": verdicts}}}
    (folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    if ttl is not None:
        (folder / "case.ttl").write_text(ttl)
    elif (folder / "case.ttl").exists():
        (folder / "case.ttl").unlink()


def main() -> None:
    ids = [c[0] for c in CASES_SPEC]
    assert len(ids) == len(set(ids)), "duplicate case id"
    for cid, s, outcome, changes, why in CASES_SPEC:
        write(CASES / cid, to_fhir(cid, s), why, outcome, changes,
              to_turtle(cid, s) if cid in TURTLE else None)
    for name, (outcome, changes, why) in EXAMPLES_EXPECTED.items():
        folder = CASES / f"fhir-example-{name}"
        bundle = json.loads((folder / "bundle.json").read_text())
        write(folder, bundle, why, outcome, changes, None)
    print(f"wrote {len(CASES_SPEC)} cases + {len(EXAMPLES_EXPECTED)} examples under {CASES}")


if __name__ == "__main__":
    main()
