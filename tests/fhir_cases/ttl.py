"""The Turtle emitter: the same case written directly in the case vocabulary, independently of
the FHIR mapper, for the FHIR/Turtle equivalence test."""

from __future__ import annotations

from datetime import date

from .common import NS, RESULT, SEVERITY, SIDE, td



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

