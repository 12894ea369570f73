"""FHIR R4 intake (issue 3): bad input, the mapping rules of docs/fhir-contract.md §1-§4, wrappers."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import PROV, RDF, XSD

from reasoner.errors import EXIT_BAD_INPUT, InputError
from reasoner.intake import fhir
from reasoner.vocab import NR

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
BASE = CASES / "fhir-example-approvable-left-l5" / "bundle.json"
CODE = "https://w3id.org/necessity/code/"


@pytest.fixture(scope="module")
def kb(reasoner):
    return reasoner.kb.knowledge


def bundle() -> dict:
    return json.loads(BASE.read_text())


def entry(b: dict, rtype: str, n: int = 0) -> tuple[int, dict]:
    hits = [(i, e) for i, e in enumerate(b["entry"]) if e["resource"]["resourceType"] == rtype]
    return hits[n]


def index_request(b: dict) -> tuple[int, dict]:
    for i, e in enumerate(b["entry"]):
        r = e["resource"]
        if r["resourceType"] == "ServiceRequest" and r["code"]["coding"][0]["code"] == "64483":
            return i, e
    raise AssertionError("no index request")


def mapped(b: dict, kb, source: str = "cases/fhir-test/bundle.json"):
    return fhir.map_bundle(b, source, kb=kb)


def error_of(b, kb, source="bad.json") -> str:
    with pytest.raises(InputError) as info:
        fhir.map_bundle(b, source, kb=kb)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(source + ":")
    assert info.value.exit_code == EXIT_BAD_INPUT
    return message


# ---------------------------------------------------------------------------- bad input


def test_not_a_bundle(kb):
    _, e = entry(bundle(), "Patient")
    msg = error_of(e["resource"], kb)  # issue 8: one resource is a record of one
    assert "no prior-authorization request" in msg
    assert "not a FHIR Bundle" in error_of({"resourceType": "Nonsense"}, kb)
    assert "not a FHIR Bundle" in error_of([1, 2], kb)


def test_bundle_not_collection(kb):
    # issue 8: transaction, batch, searchset and document Bundles are records; history is not
    b = bundle()
    b["type"] = "history"
    msg = error_of(b, kb)
    assert "Bundle.type" in msg and "collection" in msg


def test_r5_shaped_resource_names_entry_and_element(kb):
    b = bundle()
    i, e = index_request(b)
    e["resource"]["code"] = {"concept": e["resource"]["code"]}  # R5 CodeableReference
    msg = error_of(b, kb)
    assert f"entry {i} ({e['fullUrl']})" in msg
    assert "ServiceRequest.code" in msg and "R5" in msg


def test_r5_medication_statement(kb):
    b = bundle()
    i, e = entry(b, "MedicationStatement")
    r = e["resource"]
    r["medication"] = {"concept": r.pop("medicationCodeableConcept")}
    msg = error_of(b, kb)
    assert f"entry {i} ({e['fullUrl']})" in msg and "MedicationStatement.medication" in msg
    assert "R5" in msg


def test_no_patient(kb):
    b = bundle()
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "Patient"]
    msg = error_of(b, kb)
    assert "no Patient" in msg and "Bundle.entry" in msg


def test_two_patients(kb):
    b = bundle()
    _, p = entry(b, "Patient")
    twin = copy.deepcopy(p)
    twin["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-000000000001"
    b["entry"].append(twin)
    msg = error_of(b, kb)
    assert "2 Patient entries" in msg and twin["fullUrl"] in msg


def test_zero_index_requests(kb):
    b = bundle()
    _, e = index_request(b)
    e["resource"]["status"] = "completed"
    msg = error_of(b, kb)
    assert "no index ServiceRequest" in msg and "64483" in msg


def test_two_index_requests(kb):
    b = bundle()
    _, e = index_request(b)
    twin = copy.deepcopy(e)
    twin["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-000000000002"
    b["entry"].append(twin)
    msg = error_of(b, kb)
    assert "2 index ServiceRequests" in msg
    assert f"entry {len(b['entry']) - 1} ({twin['fullUrl']}) ServiceRequest.code" in msg


def test_reference_to_missing_entry(kb):
    b = bundle()
    i, e = index_request(b)
    e["resource"]["reasonReference"] = [{"reference": "urn:uuid:11111111-2222-4333-8444-555555555555"}]
    msg = error_of(b, kb)
    assert f"entry {i} ({e['fullUrl']})" in msg
    assert "ServiceRequest.reasonReference[0].reference" in msg
    assert "urn:uuid:11111111-2222-4333-8444-555555555555" in msg


def test_outside_reference_is_ignored(kb):
    b = bundle()
    _, e = index_request(b)
    e["resource"]["supportingInfo"] = [{"reference": "https://other.example.org/fhir/DocumentReference/9"}]
    mapped(b, kb)


def test_impossible_date(kb):
    b = bundle()
    i, e = index_request(b)
    e["resource"]["occurrenceDateTime"] = "2026-02-30"
    msg = error_of(b, kb)
    assert f"entry {i} ({e['fullUrl']}) ServiceRequest.occurrenceDateTime" in msg
    assert "date" in msg


def test_partial_date_is_not_an_error(kb):
    # issue 8 point 5 changed this: a year-month is read (tests/test_intake_dates.py)
    b = bundle()
    _, e = entry(b, "Condition")
    e["resource"]["onsetDateTime"] = "2025-12"
    mapped(b, kb)


def test_subject_must_be_the_patient(kb):
    b = bundle()
    i, e = entry(b, "Condition")
    _, doc = entry(b, "Practitioner")
    e["resource"]["subject"] = {"reference": doc["fullUrl"]}
    msg = error_of(b, kb)
    assert f"entry {i}" in msg and "Condition.subject" in msg and "Patient" in msg


# ---------------------------------------------------------------------------- CLI: exit 2


BAD_INPUTS = {
    "not-json": "{ this is not json",
    "not-a-bundle": json.dumps({"resourceType": "Patient", "gender": "female"}),
}


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in BAD_INPUTS.items():
        out[name] = tmp_path / f"{name}.json"
        out[name].write_text(text)
    variants = {}
    b = bundle()
    _, e = index_request(b)
    e["resource"]["code"] = {"concept": e["resource"]["code"]}
    variants["r5"] = b
    b = bundle()
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "Patient"]
    variants["no-patient"] = b
    b = bundle()
    index_request(b)[1]["resource"]["status"] = "revoked"
    variants["zero-index"] = b
    b = bundle()
    twin = copy.deepcopy(index_request(b)[1])
    twin["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-000000000003"
    b["entry"].append(twin)
    variants["two-index"] = b
    b = bundle()
    index_request(b)[1]["resource"]["reasonReference"] = [{"reference": "urn:uuid:11111111-2222-4333-8444-555555555555"}]
    variants["missing-reference"] = b
    b = bundle()
    index_request(b)[1]["resource"]["occurrenceDateTime"] = "16/03/2026"
    variants["bad-date"] = b
    for name, data in variants.items():
        out[name] = tmp_path / f"{name}.json"
        out[name].write_text(json.dumps(data))
    return out


def test_cli_bad_inputs_exit_2_one_line(tmp_path):
    click_testing = pytest.importorskip("click.testing")
    from reasoner.cli import main

    runner = click_testing.CliRunner()
    files = _bad_files(tmp_path)
    assert len(files) == 8
    for name, path in files.items():
        result = runner.invoke(main, ["determine", str(path), "--policy", "lcd-l39240"],
                               catch_exceptions=False)
        err = result.stderr if hasattr(result, "stderr") else result.output
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output + (err or ""), name
        lines = [line for line in (err or result.output).splitlines() if line.strip()]
        assert len(lines) == 1, (name, lines)
        assert str(path) in lines[0], (name, lines[0])
        if name not in ("not-json", "not-a-bundle", "no-patient", "zero-index"):
            assert "entry " in lines[0], (name, lines[0])


def test_subprocess_bad_bundle_exit_2(tmp_path):
    path = _bad_files(tmp_path)["missing-reference"]
    exe = Path(sys.executable).with_name("reasoner")
    command = [str(exe)] if exe.exists() else [shutil.which("reasoner") or "reasoner"]
    proc = subprocess.run(command + ["determine", str(path), "--policy", "lcd-l39240"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(path) in lines[0] and "ServiceRequest.reasonReference[0].reference" in lines[0]


# ---------------------------------------------------------------------------- mapping rules


def request_node(g):
    case = next(g.subjects(RDF.type, NR.PriorAuthorizationCase))
    return g.value(case, NR.indexRequest)


def D(g) -> date:
    return g.value(request_node(g), NR.requestedDate).toPython()


def test_requested_date_rules(kb):
    b = bundle()
    _, e = index_request(b)
    r = e["resource"]
    r["occurrenceDateTime"] = "2026-04-13T23:30:00-08:00"  # date part only, zone ignored
    assert D(mapped(b, kb)) == date(2026, 4, 13)
    del r["occurrenceDateTime"]
    r["occurrencePeriod"] = {"start": "2026-04-20", "end": "2026-04-21"}
    assert D(mapped(b, kb)) == date(2026, 4, 20)
    del r["occurrencePeriod"]
    r["occurrenceTiming"] = {"event": ["2026-05-10", "2026-04-27T08:00:00Z"], "repeat": {"count": 2}}
    g = mapped(b, kb)
    assert D(g) == date(2026, 4, 27)
    assert g.value(request_node(g), NR.seriesCount) == Literal(2, datatype=XSD.integer)
    del r["occurrenceTiming"]
    assert D(mapped(b, kb)) == date.fromisoformat(r["authoredOn"])
    del r["authoredOn"]
    with pytest.raises(InputError):
        mapped(b, kb)


def test_every_fact_has_provenance_and_element(kb):
    g = mapped(bundle(), kb)
    facts = set()
    for cls in (NR.ServiceRequest, NR.Diagnosis, NR.ScaleAssessment, NR.MedicationEpisode,
                NR.NonDrugTherapyEpisode, NR.ImagingFinding, NR.DiagnosticReport, NR.ExamFinding,
                NR.CarePlan, NR.PlannedActivity, NR.OrderDetail, NR.Patient,
                NR.PainCharacterAssessment, NR.TherapyResponseAssessment):
        found = set(g.subjects(RDF.type, cls))
        assert found, cls
        facts |= found
    for f in facts:
        doc = g.value(f, PROV.wasDerivedFrom)
        assert doc is not None and str(doc).startswith("urn:uuid:"), f
        assert (doc, RDF.type, NR.FhirResource) in g
        assert g.value(doc, NR.resourceType) is not None
        element = str(g.value(f, NR.sourceElement))
        assert element.split(".")[0].split("[")[0] == str(g.value(doc, NR.resourceType)), (f, element)
    req = request_node(g)
    assert str(req).startswith("https://w3id.org/necessity/case/fhir-test/ServiceRequest-")
    assert g.value(req, PROV.wasDerivedFrom) == URIRef(index_request(bundle())[1]["fullUrl"])


def test_codes_become_concept_iris(kb):
    g = mapped(bundle(), kb)
    req = request_node(g)
    assert URIRef(CODE + "cpt/64483") in set(g.objects(req, NR.code))
    assert URIRef(CODE + "spine-anatomy/root-L5") in set(g.objects(req, NR.nerveRoot))
    assert URIRef(CODE + "snomed/7771000") in set(g.objects(req, NR.laterality))
    details = {g.value(d, NR.code) for d in g.objects(req, NR.orderDetail)}
    assert URIRef(CODE + "dicom/RF") in details and URIRef(CODE + "esi-order-detail/contrast") in details
    scales = set(g.subjects(RDF.type, NR.ScaleAssessment))
    units = {g.value(s, NR.unit) for s in scales}
    assert URIRef(CODE + "ucum/%7Bscore%7D") in units and URIRef(CODE + "ucum/%25") in units
    dx = next(g.subjects(RDF.type, NR.Diagnosis))
    assert g.value(dx, NR.code) == URIRef(CODE + "icd10cm/M51.17")


def test_status_filtering_records_not_counted(kb):
    b = bundle()
    _, cond = entry(b, "Condition")
    cond["resource"]["verificationStatus"]["coding"][0]["code"] = "refuted"
    _, ms = entry(b, "MedicationStatement")
    ms["resource"]["status"] = "entered-in-error"
    _, cp = entry(b, "CarePlan")
    cp["resource"]["status"] = "completed"
    g = mapped(b, kb)
    assert not set(g.subjects(RDF.type, NR.Diagnosis))
    assert not set(g.subjects(RDF.type, NR.MedicationEpisode))
    assert not set(g.subjects(RDF.type, NR.CarePlan))
    assert not set(g.objects(request_node(g), NR.reasonDiagnosis))  # refuted RC is absent
    items = fhir.summary(g)["not_counted"]
    reasons = " | ".join(i["reason"] for i in items)
    assert len(items) == 3
    assert "refuted" in reasons and "entered-in-error" in reasons and "completed" in reasons
    assert all(i["source"].startswith("urn:uuid:") for i in items)


def test_provisional_condition_counts(kb):
    b = bundle()
    _, cond = entry(b, "Condition")
    cond["resource"]["verificationStatus"]["coding"][0]["code"] = "provisional"
    g = mapped(b, kb)
    assert set(g.objects(request_node(g), NR.reasonDiagnosis))


def test_relief_duration_converted_to_days(kb):
    g = fhir.map_bundle(json.loads((CASES / "fhir-denied-repeat-short-relief" / "bundle.json").read_text()),
                        "x.json", kb=kb)
    days = {r.toPython() for r in g.objects(None, NR.reliefDurationDays)}
    assert days == {42}  # 6 wk x 7
    b = json.loads((CASES / "fhir-approved-29-feb-window-edge" / "bundle.json").read_text())
    g = fhir.map_bundle(b, "x.json", kb=kb)
    assert {r.toPython() for r in g.objects(None, NR.reliefDurationDays)} == {365}  # 1 a
    ctx = fhir.context_for(kb)
    assert {k: int(v) for k, v in ctx.days.items() if k in ("d", "wk", "mo", "a")} == \
        {"d": 1, "wk": 7, "mo": 30, "a": 365}


def test_unknown_duration_unit_is_reported(kb):
    b = json.loads((CASES / "fhir-denied-repeat-short-relief" / "bundle.json").read_text())
    for e in b["entry"]:
        for c in e["resource"].get("component", []):
            if c["code"]["coding"][0]["code"] == "relief-duration":
                c["valueQuantity"].update(unit="h", code="h")
    g = fhir.map_bundle(b, "x.json", kb=kb)
    assert not set(g.objects(None, NR.reliefDurationDays))
    assert any("duration unit" in i["reason"] for i in fhir.summary(g)["unrecognised"])


def test_unrecognised_code_kept_and_reported(kb):
    b = bundle()
    patient = entry(b, "Patient")[1]["fullUrl"]
    b["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa", "resource": {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "exam"}]}],
        "code": {"coding": [{"system": "https://w3id.org/necessity/fhir/CodeSystem/esi-observation",
                             "code": "patrick-test"}]},
        "subject": {"reference": patient}, "effectiveDateTime": "2026-03-30",
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]}}})
    b["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000bb", "resource": {
        "resourceType": "Procedure", "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "63030"}]},
        "subject": {"reference": patient}, "performedDateTime": "2024-01-10"}})
    _, e = index_request(b)
    e["resource"]["orderDetail"].append({"coding": [{"system": "https://w3id.org/necessity/fhir/CodeSystem/esi-order-detail",
                                                     "code": "robot-guidance"}]})
    g = mapped(b, kb)
    items = fhir.summary(g)["unrecognised"]
    texts = " | ".join(i["text"] for i in items)
    assert "patrick-test" in texts and "63030" in texts and "robot-guidance" in texts
    case = next(g.subjects(RDF.type, NR.PriorAuthorizationCase))
    assert len(set(g.objects(case, NR.hasUnrecognisedItem))) == 3
    for i in items:
        assert i["source"].startswith("urn:uuid:") and i["element"]
    # the unknown order detail is still an order detail of the request (kept as given)
    req = request_node(g)
    codes = {str(g.value(d, NR.code)) for d in g.objects(req, NR.orderDetail)}
    assert CODE + "esi-order-detail/robot-guidance" in codes


def test_value_sets_come_from_the_knowledge_graph(kb):
    ctx = fhir.context_for(kb)
    for name in ("conservative-nondrug", "lumbar-esi-procedures", "history-procedures",
                 "conservative-medication-ingredients", "baseline-scales", "index-service"):
        assert ctx.valueset_source[name] == "kb", name
    assert CODE + "cpt/97110" in ctx.valuesets["conservative-nondrug"]
    assert ctx.namespace("http://hl7.org/fhir/sid/icd-10-cm") == CODE + "icd10cm/"
    assert ctx.namespace("https://w3id.org/necessity/fhir/CodeSystem/spine-zone") == CODE + "spine-zone/"


def test_procedure_classified_by_value_set(kb):
    g = fhir.map_bundle(json.loads((CASES / "fhir-example-seed-l5-snrb" / "bundle.json").read_text()),
                        "seed.json", kb=kb)
    procs = {str(g.value(p, NR.code)).rsplit("/", 1)[1] for p in g.subjects(RDF.type, NR.SpinalProcedure)}
    assert procs == {"64635", "64636", "20552", "64445"}
    nondrug = {str(g.value(p, NR.code)).rsplit("/", 1)[1] for p in g.subjects(RDF.type, NR.NonDrugTherapyEpisode)}
    assert nondrug == {"home-exercise-program", "heat-cold-therapy"}
    segs = {str(o).rsplit("/", 1)[1] for o in g.objects(None, NR.segment)}
    assert {"L3-L4", "L4-L5"} <= segs


# ---------------------------------------------------------------------------- wrappers


def _facts(g):
    """Mapped facts, without provenance and the wrapper marker, IRIs made comparable."""
    skip = {NR.intakeWrapper, NR.section, NR.entryIndex, PROV.wasDerivedFrom}
    out = set()
    for s, p, o in g:
        if p in skip or (s, RDF.type, NR.FhirResource) in g:
            continue
        out.add((str(s).split("/", 5)[-1], str(p), str(o).split("/", 5)[-1] if str(o).startswith("https://w3id.org/necessity/case/") else str(o)))
    return out


@pytest.mark.parametrize("wrapper", ["cds", "pas"])
def test_wrappers_flatten_to_the_collection_form(kb, wrapper):
    from .fhir_cases.common import base
    from .fhir_cases.fhir import to_fhir

    s = base()
    plain = to_fhir("wrap", s)
    s["wrap"] = wrapper
    wrapped = to_fhir("wrap", s)
    g1 = fhir.map_bundle(plain, "wrap.json", kb=kb)
    g2 = fhir.map_bundle(wrapped, "wrap.json", kb=kb)
    assert (None, NR.intakeWrapper, Literal({"cds": "cds-hooks", "pas": "pas"}[wrapper])) in g2
    a, b = _facts(g1), _facts(g2)
    assert a - b == set() and b - a == set()


def test_cds_hooks_without_draft_orders(kb):
    msg = error_of({"hook": "order-sign", "context": {"patientId": "1"}, "prefetch": {}}, kb)
    assert "context.draftOrders" in msg


def test_pas_supporting_info_must_resolve(kb):
    data = json.loads((CASES / "fhir-pas-approved" / "bundle.json").read_text())
    claim = data["entry"][0]["resource"]
    claim["supportingInfo"][0]["valueReference"]["reference"] = "urn:uuid:99999999-2222-4333-8444-555555555555"
    msg = error_of(data, kb)
    assert "Claim.supportingInfo[0].valueReference" in msg or "reference" in msg
