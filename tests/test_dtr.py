"""DTR questionnaires (docs/dtr.md): a pended determination's Questionnaire (one item per
missing fact, types, units and answer options from the knowledge base, deterministic), and a
QuestionnaireResponse merged into the case and re-decided (approved, denied with the
clinician-review notice, still pended with fewer missing), every bad input refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import Graph, URIRef
from rdflib.namespace import PROV

from reasoner.cli.app import main
from reasoner.dtr.answers import parse_response, redecide
from reasoner.dtr.questionnaire import NotPended, build_questionnaire, canonical, dumps
from reasoner.dtr.questions import question_book
from reasoner.engines.fhir import validate_resource
from reasoner.errors import InputError
from reasoner.vocab import NR, VS

from .conftest import CASES

POLICY = "lcd-l39240"
UCUM = "http://unitsofmeasure.org"
CRITERION = "https://w3id.org/necessity/fhir/StructureDefinition/criterion"


def pended_cases() -> list[str]:
    out = []
    for path in sorted(CASES.glob("*/expected.json")):
        expected = json.loads(path.read_text(encoding="utf-8")).get("expected", {}).get(POLICY)
        if expected and expected["outcome"] == "pended":
            out.append(path.parent.name)
    return out


PENDED = pended_cases()


def test_the_pended_corpus_is_collected():
    assert len(PENDED) == 29


@pytest.fixture(scope="module")
def decided(reasoner):
    cache = {}

    def get(name):
        if name not in cache:
            case = reasoner.load_case(CASES / name)
            cache[name] = (case, reasoner.determine(case, POLICY))
        return cache[name]

    return get


def refs(item) -> list[str]:
    return [e["valueString"] for e in item.get("extension", []) if e["url"] == CRITERION]


@pytest.mark.parametrize("name", PENDED)
def test_every_pended_case_gets_a_valid_questionnaire(reasoner, decided, name):
    _, d = decided(name)
    q = build_questionnaire(d, reasoner.kb)
    assert validate_resource(q) is None
    link_ids = [i["linkId"] for i in q["item"]]
    assert len(link_ids) == len(set(link_ids))
    missing = {c.ref for c in d.criteria if c.status == "missing"}
    served = {ref for item in q["item"] for ref in refs(item)}
    assert served == missing  # every missing criterion is asked or listed, nothing else
    # one item per fact: no two question items share a question; display items only where no
    # question answers the condition
    book = question_book(reasoner.kb)
    assert all(i["linkId"] in book.questions or i["type"] == "display" for i in q["item"])
    assert dumps(build_questionnaire(d, reasoner.kb)) == dumps(q)  # deterministic


def test_one_item_per_fact_serving_every_criterion_that_needs_it(reasoner, decided):
    _, d = decided("incomplete-order")
    q = build_questionnaire(d, reasoner.kb)
    items = {i["linkId"]: i for i in q["item"]}
    assert list(items) == ["image-guidance", "contrast-use", "level-count",
                           "send-ESI-CI-1-missing-exam"]
    assert refs(items["image-guidance"]) == ["ESI-CI-4", "ESI-LIM-1"]  # twins: one item
    assert refs(items["level-count"]) == ["ESI-CI-6", "ESI-LIM-8"]
    assert items["level-count"]["type"] == "integer"
    assert {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 1} \
        in items["level-count"]["extension"]
    assert items["send-ESI-CI-1-missing-exam"]["type"] == "display"
    assert items["send-ESI-CI-1-missing-exam"]["text"].startswith("Send: ")
    codes = {o["valueCoding"]["code"] for o in items["image-guidance"]["answerOption"]}
    members = {str(reasoner.kb.knowledge.value(c, URIRef("http://www.w3.org/2004/02/skos/core#notation")))
               for c in reasoner.kb.knowledge.objects(VS["guidance-modalities"], NR.includesCode)}
    assert codes == members and len(codes) == 4


def test_types_units_and_value_sets_come_from_the_knowledge_base(reasoner, decided):
    _, d = decided("pended-no-baseline-scale")
    (item,) = build_questionnaire(d, reasoner.kb)["item"]
    assert (item["linkId"], item["type"], refs(item)) == ("baseline-scale-score", "group", ["ESI-CI-2"])
    parts = {p["linkId"].split(".")[1]: p for p in item["item"]}
    assert [p["type"] for p in item["item"]] == ["choice", "decimal", "date"]
    scales = reasoner.kb.knowledge.objects(VS["baseline-scales"], NR.includesCode)
    assert len(parts["scale"]["answerOption"]) == len(set(scales)) == 9
    _, d = decided("repeat-responder-no-duration")
    (item,) = build_questionnaire(d, reasoner.kb)["item"]
    assert item["type"] == "quantity"
    units = [e["valueCoding"] for e in item["extension"] if e["url"].endswith("unitOption")]
    assert [(u["system"], u["code"]) for u in units] == [(UCUM, "d"), (UCUM, "mo"), (UCUM, "wk")]
    _, d = decided("fhir-pended-onset-after-d")
    (item,) = build_questionnaire(d, reasoner.kb)["item"]
    assert (item["linkId"], item["type"]) == ("pain-onset-date", "date")


def test_canonical_url_and_version_follow_the_policy_version(reasoner, decided):
    _, d = decided("fhir-pended-onset-after-d")
    q = build_questionnaire(d, reasoner.kb)
    assert q["version"] == d.policy.version == "2026-01-01"
    assert q["url"].startswith(f"https://w3id.org/necessity/questionnaire/{POLICY}/")
    _, other = decided("pended-no-baseline-scale")
    assert build_questionnaire(other, reasoner.kb)["url"] != q["url"]  # other facts asked


def test_a_case_that_is_not_pended_needs_no_questionnaire(reasoner):
    d = reasoner.determine(reasoner.load_case(CASES / "seed-l5-snrb"), POLICY)
    with pytest.raises(NotPended, match="not pended"):
        build_questionnaire(d, reasoner.kb)


# ---------------------------------------------------------------------------- answers


def response(q: dict, items: list, authored: str = "2026-04-10", **extra) -> dict:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": canonical(q),
            "status": "completed", "authored": authored,
            "author": {"display": "Dr. Dana Rivera"}, "item": items, **extra}


def answer(reasoner, decided, name, items, **kw):
    case, d = decided(name)
    q = build_questionnaire(d, reasoner.kb)
    qr = parse_response(json.dumps(response(q, items, **kw)).encode(), "qr.json")
    return redecide(reasoner, case, d, qr, "qr.json")


def onset(day):
    return [{"linkId": "pain-onset-date", "answer": [{"valueDate": day}]}]


def scale(code="72514-3", score=7, day="2026-03-30"):
    return [{"linkId": "baseline-scale-score", "item": [
        {"linkId": "baseline-scale-score.scale",
         "answer": [{"valueCoding": {"system": "http://loinc.org", "code": code}}]},
        {"linkId": "baseline-scale-score.score", "answer": [{"valueDecimal": score}]},
        {"linkId": "baseline-scale-score.date", "answer": [{"valueDate": day}]}]}]


def test_answers_that_satisfy_the_criteria_approve(reasoner, decided):
    d, merged = answer(reasoner, decided, "pended-no-baseline-scale", scale())
    assert d.outcome == "approved" and d.verdicts()["ESI-CI-2"] == "met"
    earlier = decided("pended-no-baseline-scale")[1]
    assert d.revision_of == earlier.iri and d.iri.startswith(earlier.iri + "/answers-")
    fact = next(f for f in d.criterion("ESI-CI-2").facts if "questionnaire-response" in f.iri)
    assert fact.source.startswith("answered in the questionnaire on 2026-04-10")
    doc = URIRef(d.answers["response"])
    agent = merged.graph.value(doc, PROV.wasAttributedTo)
    assert str(merged.graph.value(agent, URIRef("http://www.w3.org/2000/01/rdf-schema#label"))) \
        == "Dr. Dana Rivera"
    out = d.to_dict()
    assert out["revision_of"] == earlier.iri
    assert out["re_decided_with_answers"]["answered"] == ["baseline-scale-score"]


def test_an_answer_that_leaves_a_criterion_unmet_denies_for_clinician_review(reasoner, decided):
    d, _ = answer(reasoner, decided, "fhir-pended-onset-after-d", onset("2026-04-01"))
    assert d.outcome == "denied" and d.verdicts()["ESI-CI-3"] == "unmet"
    assert d.clinician_review_required and "clinician" in d.notice
    d, _ = answer(reasoner, decided, "fhir-pended-onset-after-d", onset("2025-12-01"))
    assert d.outcome == "approved"


def test_a_quantity_answer_is_converted_by_its_unit(reasoner, decided):
    months = [{"linkId": "relief-duration", "answer": [
        {"valueQuantity": {"value": 3, "system": UCUM, "code": "mo"}}]}]
    weeks = [{"linkId": "relief-duration", "answer": [
        {"valueQuantity": {"value": 2, "system": UCUM, "code": "wk"}}]}]
    assert answer(reasoner, decided, "repeat-responder-no-duration", months)[0].outcome == "approved"
    assert answer(reasoner, decided, "repeat-responder-no-duration", weeks)[0].outcome == "denied"


def test_a_partial_answer_stays_pended_with_fewer_missing(reasoner, decided):
    guidance = [{"linkId": "image-guidance", "answer": [{"valueCoding": {
        "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "RF"}}]}]
    before = decided("incomplete-order")[1]
    d, _ = answer(reasoner, decided, "incomplete-order", guidance, status="in-progress")
    missing = {k for k, v in d.verdicts().items() if v == "missing"}
    assert d.outcome == "pended"
    assert missing == {k for k, v in before.verdicts().items() if v == "missing"} - {"ESI-CI-4", "ESI-LIM-1"}
    assert len(missing) == 4
    assert [i["linkId"] for i in build_questionnaire(d, reasoner.kb)["item"]] == \
        ["contrast-use", "level-count", "send-ESI-CI-1-missing-exam"]


def test_answers_give_byte_identical_output(reasoner, decided):
    from reasoner.render.json import render_json

    first, _ = answer(reasoner, decided, "pended-no-baseline-scale", scale())
    second, _ = answer(reasoner, decided, "pended-no-baseline-scale", scale())
    assert render_json(first) == render_json(second)


BAD = [
    ("unknown linkId", lambda q: response(q, [{"linkId": "nope", "answer": [{"valueDate": "2025-12-01"}]}]),
     "qr.json:item 'nope': unknown linkId"),
    ("wrong type", lambda q: response(q, [{"linkId": "pain-onset-date", "answer": [{"valueString": "May"}]}]),
     "qr.json:item 'pain-onset-date': a date answer (valueDate) is required, not valueString"),
    ("another questionnaire", lambda q: response(q, onset("2025-12-01"))
     | {"questionnaire": "https://example.org/Questionnaire/x|1"},
     "qr.json:QuestionnaireResponse.questionnaire: answers questionnaire https://example.org/Questionnaire/x|1"),
    ("impossible date", lambda q: response(q, onset("2026-02-30")),
     "qr.json:QuestionnaireResponse.item[0].answer[0].valueDate: not a valid FHIR date"),
    ("after it was answered", lambda q: response(q, onset("2026-04-12")),
     "qr.json:item 'pain-onset-date': 2026-04-12 is after the day the questionnaire was answered"),
    ("before birth", lambda q: response(q, onset("1900-01-01")),
     "qr.json:item 'pain-onset-date': 1900-01-01 is before the patient's birth"),
    ("two answers", lambda q: response(q, [{"linkId": "pain-onset-date", "answer": [
        {"valueDate": "2025-12-01"}, {"valueDate": "2025-12-02"}]}]),
     "qr.json:item 'pain-onset-date': 2 answers; the item takes one"),
    ("stopped", lambda q: response(q, onset("2025-12-01"), status="stopped"),
     "qr.json:QuestionnaireResponse.status: status 'stopped'"),
    ("not a response", lambda q: {"resourceType": "Patient"}, "qr.json: not a FHIR QuestionnaireResponse"),
]


@pytest.mark.parametrize("what,make,message", BAD, ids=[b[0] for b in BAD])
def test_bad_answers_are_refused_naming_the_file_and_item(reasoner, decided, what, make, message):
    case, d = decided("fhir-pended-onset-after-d")
    q = build_questionnaire(d, reasoner.kb)
    with pytest.raises(InputError) as err:
        redecide(reasoner, case, d, parse_response(json.dumps(make(q)).encode(), "qr.json"),
                  "qr.json")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_bad_answers_collected():
    assert len(BAD) == 9


BAD_SCALE = [
    ("outside the value set", scale(code="8480-6"), "is not one of the item's answer options"),
    ("negative score", scale(score=-2), "-2 is outside the possible range 0.."),
    ("partly answered", [{"linkId": "baseline-scale-score", "item": scale()[0]["item"][:2]}],
     "partly answered: baseline-scale-score.date unanswered"),
]


@pytest.mark.parametrize("what,items,message", BAD_SCALE, ids=[b[0] for b in BAD_SCALE])
def test_bad_group_answers_are_refused(reasoner, decided, what, items, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        answer(reasoner, decided, "pended-no-baseline-scale", items)
    assert len(BAD_SCALE) == 3


def test_a_document_to_send_is_not_answered(reasoner, decided):
    items = [{"linkId": "send-ESI-CI-1-missing-exam", "answer": [{"valueString": "normal"}]}]
    with pytest.raises(InputError, match="a document to send, not a question"):
        answer(reasoner, decided, "incomplete-order", items)


def test_answers_pass_the_case_guards(reasoner, decided, monkeypatch):
    """An answer update that states a record term is refused by reasoner/guard like any case."""
    from reasoner.dtr import questions

    book = questions.question_book(reasoner.kb)
    q = book.questions["pain-onset-date"]
    hostile = q.__class__(**{**q.__dict__, "update": "INSERT { ?request nr:outcome nr:Approved } WHERE {}"})
    monkeypatch.setitem(book.questions, "pain-onset-date", hostile)
    with pytest.raises(InputError, match="qr.json:.*nr:outcome"):
        answer(reasoner, decided, "fhir-pended-onset-after-d", onset("2025-12-01"))


# ---------------------------------------------------------------------------- command line


def test_cli_round_trip(tmp_path):
    runner = CliRunner()
    case = str(CASES / "fhir-pended-onset-after-d")
    out = tmp_path / "q.json"
    result = runner.invoke(main, ["questionnaire", case, "--policy", POLICY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    q = json.loads(out.read_text(encoding="utf-8"))
    qr = tmp_path / "qr.json"
    qr.write_text(json.dumps(response(q, onset("2025-12-01"))), encoding="utf-8")
    result = runner.invoke(main, ["determine", case, "--policy", POLICY, "--answers", str(qr),
                                  "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["outcome"] == "approved" and data["revision_of"].endswith("version-2026-01-01")
    result = runner.invoke(main, ["determine", case, "--policy", POLICY, "--answers", str(qr),
                                  "--format", "turtle"])
    g = Graph().parse(data=result.output, format="turtle")
    assert (URIRef(data["determination"]), PROV.wasRevisionOf, URIRef(data["revision_of"])) in g
    result = runner.invoke(main, ["determine", case, "--policy", POLICY, "--answers", str(qr)])
    assert result.output.startswith("Re-decided with the answers of the questionnaire ")


def test_cli_not_pended_and_bad_json(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["questionnaire", str(CASES / "seed-l5-snrb"), "--policy", POLICY])
    assert result.exit_code == 1 and result.stdout == ""
    assert "no questionnaire needed" in result.stderr
    bad = tmp_path / "qr.json"
    bad.write_text("{", encoding="utf-8")
    result = runner.invoke(main, ["determine", str(CASES / "fhir-pended-onset-after-d"),
                                  "--policy", POLICY, "--answers", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}:line 1 column 2: not JSON")


def test_cli_questionnaire_in_a_real_process(reasoner, decided):
    """Another process (another hash seed) prints byte-identical JSON."""
    exe = Path(sys.executable).parent / "reasoner"
    run = subprocess.run([str(exe), "questionnaire", str(CASES / "pended-no-baseline-scale"),
                          "--policy", POLICY], capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == dumps(build_questionnaire(decided("pended-no-baseline-scale")[1],
                                                   reasoner.kb))
