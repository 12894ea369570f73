"""Da Vinci PAS `Claim/$submit` and `Claim/$inquire` of a real `reasoner serve` on loopback,
over HTTP (httpx): the PAS response Bundle (valid FHIR R4, review action in X12 306), its
outcome against `reasoner determine` on the same Bundle, resubmission, inquiry, refusals.
One server for the module."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reasoner.server.decide import TABLE

from .conftest import ROOT
from .server_harness import API_TOKEN, as_pas, record_count, service_server, sign, stop

PAS = TABLE["pas"]
PAS_REQUEST = ("cases/realworld/pas-request-uuid-64483-radiculopathy/"
               "conformant_pas_bundle_v110_uuid-64483.json")
INQUIRY = "cases/realworld/pas-inquiry-64483/conformant_pas_inquire_bundle_v110-64483.json"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def load(path):
    return json.loads((ROOT / path).read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url, proc, ec_key, _ = service_server(tmp_path_factory.mktemp("pas"))
    yield url, ec_key
    stop(proc)


def submit(url, body, headers=AUTH):
    return httpx.post(f"{url}/fhir/Claim/$submit", json=body, headers=headers, timeout=120)


def claim_response(bundle: dict) -> dict:
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)  # the R4 models accept the whole response
    assert PAS["response_bundle_profile"] in bundle["meta"]["profile"] or \
        "inquiry-response" in bundle["meta"]["profile"][0]
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return first


def review_codes(cr: dict) -> set[str]:
    out = set()
    for item in cr["item"]:
        for adj in item["adjudication"]:
            for ext in adj["extension"]:
                assert ext["url"] == PAS["review_action"]
                for sub in ext["extension"]:
                    if sub["url"] == PAS["review_action_code"]:
                        coding = sub["valueCodeableConcept"]["coding"][0]
                        assert coding["system"] == PAS["x12_306"]
                        out.add(coding["code"])
    return out


def determine_cli(bundle: dict, folder: Path) -> dict[str, str]:
    """`reasoner determine` on the same Bundle, as a real subprocess: policy -> outcome."""
    path = folder / "request.json"
    path.write_text(json.dumps(bundle))
    exe = Path(sys.executable).parent / "reasoner"
    out = subprocess.run([str(exe), "determine", str(path), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return {d["policy"]["id"]: d["outcome"] for d in json.loads(out.stdout)}


def outcome_of(cr: dict) -> dict[str, str]:
    """policy -> outcome, from the ClaimResponse's disposition."""
    head, _, rest = cr["disposition"].partition(": ")
    return dict(part.split(" ") for part in rest.split("; "))


def test_submit_answers_a_valid_pas_response_equal_to_reasoner_determine(server, tmp_path):
    url, _ = server
    body = load(PAS_REQUEST)
    r = submit(url, body)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    cr = claim_response(r.json())
    expected = determine_cli(body, tmp_path)
    assert outcome_of(cr) == expected
    assert expected == {"clinical-snrb": "pended", "lcd-l39240": "pended"}
    assert review_codes(cr) == {PAS["outcomes"]["pended"]["code"]}
    ids = [i["value"] for i in cr["identifier"]]
    assert len(ids) == 2 and all("/determination/" in i for i in ids)
    notes = [n["text"] for n in cr["processNote"]]
    assert any("(missing)" in n for n in notes)       # the decisive criteria, with reasons
    claim = body["entry"][0]["resource"]
    assert cr["request"]["identifier"]["value"] == claim["identifier"][0]["value"]
    assert cr["patient"] == claim["patient"]


def test_resubmission_answers_the_stored_decision(server):
    url, _ = server
    body = load(PAS_REQUEST)
    first = submit(url, body)
    before = record_count(url)
    changed = copy.deepcopy(body)
    changed["entry"][0]["resource"]["created"] = "2030-01-01T00:00:00Z"  # same identifier
    again = submit(url, changed)
    assert again.status_code == 200
    one, two = claim_response(first.json()), claim_response(again.json())
    one.pop("created"), two.pop("created")
    assert one == two
    assert record_count(url) == before


def test_approved_request_is_certified_a1(server, tmp_path):
    url, _ = server
    body = as_pas(load("cases/fhir-example-approvable-left-l5/bundle.json"), "approve-1")
    r = submit(url, body)
    assert r.status_code == 201, r.text
    cr = claim_response(r.json())
    assert outcome_of(cr) == determine_cli(body, tmp_path)
    assert review_codes(cr) == {"A1"}
    assert cr["outcome"] == "complete" and cr["preAuthRef"] == cr["id"]


def test_denied_request_is_a3_and_a_recommendation(server, tmp_path):
    url, _ = server
    body = as_pas(load("cases/fhir-denied-axial-diagnosis/bundle.json"), "deny-1")
    r = submit(url, body)
    assert r.status_code == 201, r.text
    cr = claim_response(r.json())
    assert outcome_of(cr) == determine_cli(body, tmp_path)
    assert review_codes(cr) == {"A3"}
    assert "clinician review" in cr["processNote"][0]["text"]
    assert "preAuthRef" not in cr


def test_parameters_wrapped_bundle_is_read(server):
    url, _ = server
    body = {"resourceType": "Parameters", "parameter": [{"name": "resource",
                                                         "resource": load(PAS_REQUEST)}]}
    r = submit(url, body)
    assert r.status_code in (200, 201), r.text
    claim_response(r.json())


def test_inquire_answers_the_stored_decision(server):
    url, _ = server
    submitted = claim_response(submit(url, load(PAS_REQUEST)).json())
    inquiry = load(INQUIRY)
    claim = next(e["resource"] for e in inquiry["entry"]
                 if e["resource"]["resourceType"] == "Claim")
    claim["identifier"] = load(PAS_REQUEST)["entry"][0]["resource"]["identifier"]
    r = httpx.post(f"{url}/fhir/Claim/$inquire", json=inquiry, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    cr = claim_response(r.json())
    assert cr["id"] == submitted["id"] and review_codes(cr) == review_codes(submitted)
    assert cr["identifier"] == submitted["identifier"]


def test_inquire_for_an_unknown_claim_is_404(server):
    url, _ = server
    inquiry = load(INQUIRY)
    for e in inquiry["entry"]:
        if e["resource"]["resourceType"] == "Claim":
            e["resource"]["identifier"] = [{"system": "urn:example:claims", "value": "never"}]
    r = httpx.post(f"{url}/fhir/Claim/$inquire", json=inquiry, headers=AUTH, timeout=60)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_client_jwt_for_this_endpoint_is_accepted(server):
    url, ec_key = server
    token = sign(ec_key, f"{url}/fhir/Claim/$submit")
    r = submit(url, load(PAS_REQUEST), {"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}],
                         ids=["no-token", "wrong-token", "basic"])
def test_submit_without_a_valid_token_is_refused_and_stores_nothing(server, headers):
    url, _ = server
    before = record_count(url)
    body = as_pas(load("cases/fhir-example-approvable-left-l5/bundle.json"), "refused-1")
    r = submit(url, body, headers)
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"
    assert record_count(url) == before
    r = httpx.post(f"{url}/fhir/Claim/$inquire", json=body, headers=headers, timeout=30)
    assert r.status_code == 401


def test_jwt_for_another_endpoint_is_refused(server):
    url, ec_key = server
    token = sign(ec_key, f"{url}/cds-services/necessity-order-sign")
    r = submit(url, load(PAS_REQUEST), {"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_uncovered_service_is_422_and_stores_nothing(server):
    url, _ = server
    before = record_count(url)
    body = load("cases/realworld/pas-request-referral/conformant_pas_bundle_v110.json")
    # the test kit's examples share one Claim identifier: a new one, or it is a resubmission
    body["entry"][0]["resource"]["identifier"] = [{"system": "urn:example:claims",
                                                   "value": "referral-1"}]
    r = submit(url, body)
    assert r.status_code == 422, r.text
    assert "no policy" in r.json()["issue"][0]["diagnostics"]
    assert record_count(url) == before


@pytest.mark.parametrize("path, status", [
    ("cases/realworld/pas-response/valid_pa_response_bundle.json", 400),
    ("cases/realworld/pas-request-empty/" , 400),
], ids=["claim-response", "empty"])
def test_requests_that_are_not_pas_requests_are_400(server, path, status):
    url, _ = server
    target = ROOT / path
    if target.is_dir():
        target = next(p for p in target.glob("*.json")
                      if p.name not in ("expected.json", "provenance.json"))
    r = submit(url, json.loads(target.read_text()))
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_claim_without_identifier_is_400(server):
    url, _ = server
    body = as_pas(load("cases/fhir-example-approvable-left-l5/bundle.json"), "x")
    del body["entry"][0]["resource"]["identifier"]
    r = submit(url, body)
    assert r.status_code == 400 and "identifier" in r.text


def test_oversized_and_malformed_bodies(server):
    url, _ = server
    big = b'{"resourceType": "Bundle", "pad": "' + b"x" * (1024 ** 2 + 10) + b'"}'
    r = httpx.post(f"{url}/fhir/Claim/$submit", content=big, timeout=60,
                   headers={**AUTH, "Content-Type": "application/fhir+json"})
    assert r.status_code == 413
    r = httpx.post(f"{url}/fhir/Claim/$submit", content=b"{", timeout=60,
                   headers={**AUTH, "Content-Type": "application/fhir+json"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = httpx.post(f"{url}/fhir/Claim/$submit", content=b"<Bundle/>", timeout=60,
                   headers={**AUTH, "Content-Type": "application/fhir+xml"})
    assert r.status_code == 415
