"""The FHIR R4 emitter: a case spec as a collection Bundle, or wrapped as a CDS Hooks order-sign
request or a Da Vinci PAS request Bundle (docs/fhir-contract.md). CPT codes carry no display
(AMA descriptors are licensed)."""

from __future__ import annotations

import copy
import uuid

from .common import CAT_OBS, RESULT, SEVERITY, SIDE, SYS, td



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

