"""The CRD service (CDS Hooks 2.0 + Da Vinci CRD) of a real `reasoner serve` on loopback, over
HTTP (httpx): discovery, order-sign and order-select, uncovered and missing-prefetch requests,
every refusal of the client JWT, oversized and malformed bodies. One server for the module."""

from __future__ import annotations

import json
import urllib.parse

import httpx
import pytest

from reasoner.server.decide import TABLE

from .conftest import ROOT
from .server_harness import (ISSUER, RSA_ISSUER, as_cds, record_count, service_server, sign,
                             stop)

REALWORLD = ROOT / "cases" / "realworld"
EXT = TABLE["crd"]["extension"]
SIGN = "/cds-services/necessity-order-sign"
SELECT = "/cds-services/necessity-order-select"


def load(path):
    return json.loads((ROOT / path).read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url, proc, ec_key, rsa_key = service_server(tmp_path_factory.mktemp("hooks"))
    yield url, ec_key, rsa_key
    stop(proc)


@pytest.fixture(scope="module")
def prefetch_keys(server):
    url, *_ = server
    services = httpx.get(f"{url}/cds-services", timeout=30).json()["services"]
    return list(services[0]["prefetch"])


def call(server, path, body, token=None, **kw):
    url, ec_key, _ = server
    token = token if token is not None else sign(ec_key, url + path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(url + path, json=body, headers=headers, timeout=120, **kw)


def coverage(action) -> dict:
    ext = [e for e in action["resource"]["extension"] if e["url"] == EXT]
    assert len(ext) == 1
    return {e["url"]: e for e in ext[0]["extension"]}


def test_discovery_lists_both_hooks_with_prefetch_from_the_mapping_table(server):
    url, *_ = server
    r = httpx.get(f"{url}/cds-services", timeout=30)
    assert r.status_code == 200
    services = {s["hook"]: s for s in r.json()["services"]}
    assert set(services) == {"order-sign", "order-select"}
    mapping = json.loads((ROOT / "reasoner/intake/fhir-mapping.json").read_text())
    types = {rule["resourceType"] for rule in mapping["rules"]}
    prefetch = services["order-sign"]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    queried = {q.split("?")[0] for q in prefetch.values()}
    assert types <= queried | {"Patient"}
    assert all("{{context.patientId}}" in q for q in prefetch.values())


def test_covered_order_gets_a_coverage_action_and_a_card(server):
    body = load("cases/realworld/crd-order-sign-64483/CRDServiceRequest-64483.json")
    r = call(server, SIGN, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer["cards"]) == 1 and len(answer["systemActions"]) == 1
    action = answer["systemActions"][0]
    assert action["type"] == "update"
    assert action["resource"]["id"] == body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    info = coverage(action)
    assert info["covered"]["valueCode"] == "conditional"
    assert info["pa-needed"]["valueCode"] == "auth-needed"
    assert info["doc-needed"]["valueCode"] == "clinical"
    assert info["info-needed"]["valueCode"] == "OTH"      # crd-ci-q3: a conditional is set
    assert "Missing:" in info["reason"]["valueCodeableConcept"]["text"]
    assert info["coverage-assertion-id"]["valueString"]
    card = answer["cards"][0]
    assert len(card["summary"]) < 140 and card["indicator"] == "warning"
    assert card["source"]["label"]
    # the link opens this server's determination page of a stored record
    link = card["links"][0]["url"]
    iri = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["iri"][0]
    page = httpx.get(server[0] + "/determination", params={"iri": iri}, timeout=120)
    assert page.status_code == 200


def test_order_select_answers_the_selected_order(server):
    body = load("cases/realworld/crd-kit-order-select-64483/"
                + next(p.name for p in (REALWORLD / "crd-kit-order-select-64483").glob("*.json")
                       if p.name not in ("expected.json", "provenance.json")))
    assert body["hook"] == "order-select"
    r = call(server, SELECT, body)
    assert r.status_code == 200, r.text
    assert len(r.json()["systemActions"]) == len(r.json()["cards"]) == 1


def test_uncovered_order_gets_no_card_and_no_action(server):
    url, *_ = server
    before = record_count(url)
    body = load("cases/realworld/crd-order-sign-mammography-oxygen/CRDServiceRequest.json")
    r = call(server, SIGN, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"cards": [], "systemActions": []}
    assert record_count(url) == before


def test_the_same_request_for_an_uncovered_service_gets_nothing(server):
    body = load("cases/realworld/crd-order-sign-64483/CRDServiceRequest-64483.json")
    other = load("cases/realworld/crd-order-sign-mammography-oxygen/CRDServiceRequest.json")
    uncovered = next(e["resource"] for e in other["context"]["draftOrders"]["entry"]
                     if e["resource"]["resourceType"] == "ServiceRequest")
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"] = uncovered["code"]
    r = call(server, SIGN, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"cards": [], "systemActions": []}


def test_each_draft_order_is_answered_on_its_own(server):
    body = load("cases/realworld/crd-order-sign-64483/CRDServiceRequest-64483.json")
    other = load("cases/realworld/crd-order-sign-mammography-oxygen/CRDServiceRequest.json")
    covered = body["context"]["draftOrders"]["entry"]
    uncovered = other["context"]["draftOrders"]["entry"]
    body["context"]["draftOrders"]["entry"] = [*uncovered, *covered]
    r = call(server, SIGN, body)
    assert r.status_code == 200, r.text
    actions = r.json()["systemActions"]
    assert [a["resource"]["id"] for a in actions] == [covered[0]["resource"]["id"]]
    assert len(r.json()["cards"]) == 1


def test_missing_prefetch_pends_and_names_what_to_send(server, prefetch_keys):
    body = load("cases/realworld/crd-order-sign-64483-no-prefetch/"
                "CRDServiceRequest-64483-no-prefetch.json")
    assert not body.get("prefetch")
    r = call(server, SIGN, body)
    assert r.status_code == 200, r.text
    card = r.json()["cards"][0]
    assert "prior authorization needed" in card["summary"]
    assert "no prefetch for" in card["detail"]
    assert all(key in card["detail"] for key in prefetch_keys)
    assert coverage(r.json()["systemActions"][0])["covered"]["valueCode"] == "conditional"


def test_a_chart_meeting_every_policy_is_covered_and_authorization_satisfied(server,
                                                                             prefetch_keys):
    bundle = load("cases/fhir-example-approvable-left-l5/bundle.json")
    r = call(server, SIGN, as_cds(bundle, "order-sign", prefetch_keys))
    assert r.status_code == 200, r.text
    info = coverage(r.json()["systemActions"][0])
    assert info["covered"]["valueCode"] == "covered"
    assert info["pa-needed"]["valueCode"] == "satisfied"
    assert info["satisfied-pa-id"]["valueString"] == info["coverage-assertion-id"]["valueString"]
    assert "info-needed" not in info
    card = r.json()["cards"][0]
    assert card["indicator"] == "info" and "no prefetch" not in card["detail"]


def test_a_denial_is_a_recommendation_for_clinician_review(server, prefetch_keys):
    bundle = load("cases/fhir-denied-axial-diagnosis/bundle.json")
    r = call(server, SIGN, as_cds(bundle, "order-sign", prefetch_keys))
    assert r.status_code == 200, r.text
    info = coverage(r.json()["systemActions"][0])
    assert info["covered"]["valueCode"] == "not-covered"
    assert "pa-needed" not in info                          # crd-ci-q2
    card = r.json()["cards"][0]
    assert "clinician review" in card["summary"] and "clinician review" in card["detail"]
    assert "clinician review" in info["reason"]["valueCodeableConcept"]["text"]


def test_the_same_order_twice_gives_the_same_answer(server):
    body = load("cases/realworld/crd-order-sign-64483/CRDServiceRequest-64483.json")
    first, second = call(server, SIGN, body).json(), call(server, SIGN, body).json()
    assert first == second


# -- refusals: nothing decided, nothing stored ----------------------------------------------

@pytest.fixture
def order_sign(server):
    return load("cases/realworld/crd-order-sign-64483/CRDServiceRequest-64483.json")


def refused(server, body, token, status=401, path=SIGN):
    url, *_ = server
    before = record_count(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(url + path, json=body, headers=headers, timeout=60)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert record_count(url) == before
    return r.json()["issue"][0]["diagnostics"]


def test_no_token_is_refused(server, order_sign):
    assert "Bearer" in refused(server, order_sign, None)


def test_bad_signature_is_refused(server, order_sign):
    from cryptography.hazmat.primitives.asymmetric import ec

    url, *_ = server
    stranger = ec.generate_private_key(ec.SECP384R1())
    assert "signature" in refused(server, order_sign, sign(stranger, url + SIGN))


def test_wrong_audience_is_refused(server, order_sign):
    url, ec_key, _ = server
    assert "aud" in refused(server, order_sign, sign(ec_key, url + SELECT))


def test_expired_token_is_refused(server, order_sign):
    url, ec_key, _ = server
    assert "expired" in refused(server, order_sign, sign(ec_key, url + SIGN, exp_in=-60))


def test_token_living_too_long_is_refused(server, order_sign):
    url, ec_key, _ = server
    assert "longer" in refused(server, order_sign, sign(ec_key, url + SIGN, exp_in=3600))


def test_unknown_issuer_is_refused(server, order_sign):
    url, ec_key, _ = server
    token = sign(ec_key, url + SIGN, iss="https://unknown.example.org")
    assert "issuer" in refused(server, order_sign, token)


def test_replayed_jti_is_refused(server, order_sign):
    url, ec_key, _ = server
    token = sign(ec_key, url + SIGN)
    assert call(server, SIGN, order_sign, token=token).status_code == 200
    assert "replayed" in refused(server, order_sign, token)


def test_hmac_and_unsigned_tokens_are_refused(server, order_sign):
    import jwt

    url, *_ = server
    claims = {"iss": ISSUER, "aud": url + SIGN, "exp": 4102444800, "jti": "x"}
    assert "algorithm" in refused(server, order_sign, jwt.encode(claims, "k" * 32, "HS256"))
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert "algorithm" in refused(server, order_sign, unsigned)


def test_rs384_client_is_accepted(server, order_sign):
    url, _, rsa_key = server
    token = sign(rsa_key, url + SIGN, iss=RSA_ISSUER, alg="RS384", kid="rsa-1")
    assert call(server, SIGN, order_sign, token=token).status_code == 200


# -- bodies ---------------------------------------------------------------------------------

def test_oversized_body_is_refused_413(server):
    url, ec_key, _ = server
    body = b'{"hook": "order-sign", "pad": "' + b"x" * (1024 ** 2 + 10) + b'"}'
    r = httpx.post(url + SIGN, content=body, timeout=60, headers={
        "Authorization": f"Bearer {sign(ec_key, url + SIGN)}", "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400), (b"[1, 2]", 400), (b'{"hook": "order-select", "context": {}}', 400),
    (b'{"hook": "order-sign", "context": {"patientId": "1"}}', 400),
    (b'{"hook": "order-sign", "context": {"draftOrders": {"resourceType": "Bundle", '
     b'"entry": [{"resource": {"resourceType": "ServiceRequest", "status": 5}}]}}}', 200),
], ids=["not-json", "not-object", "wrong-hook", "no-draft-orders", "unreadable-order"])
def test_malformed_bodies_are_answered_with_an_operation_outcome(server, body, status):
    url, ec_key, _ = server
    r = httpx.post(url + SIGN, content=body, timeout=60, headers={
        "Authorization": f"Bearer {sign(ec_key, url + SIGN)}", "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["resourceType"] == "OperationOutcome"
    else:  # an order no pack covers, however malformed, gets no card
        assert r.json() == {"cards": [], "systemActions": []}


def test_unknown_service_is_404(server):
    url, ec_key, _ = server
    r = httpx.post(url + "/cds-services/nothing", json={}, timeout=30, headers={
        "Authorization": f"Bearer {sign(ec_key, url + '/cds-services/nothing')}"})
    assert r.status_code == 404


# -- the caller check without a server: configurations that accept nobody -------------------

class _Request:
    def __init__(self, auth: str | None):
        self.headers = {"authorization": auth} if auth else {}


def test_a_server_without_clients_or_tokens_refuses_with_403():
    from reasoner.server.auth import Auth, AuthError

    for check in (lambda a: a.require_cds(_Request("Bearer x.y.z"), "http://s/cds-services/a"),
                  lambda a: a.require_cds(_Request(None), "http://s/cds-services/a"),
                  lambda a: a.require_bearer(_Request(None), "http://s/fhir/Claim/$submit"),
                  lambda a: a.require_bearer(_Request("Bearer x"), "http://s/fhir/Claim/$submit")):
        with pytest.raises(AuthError) as refused:
            check(Auth())
        assert refused.value.status == 403


def test_client_file_with_private_keys_or_urls_is_refused(tmp_path):
    from reasoner.errors import InputError
    from reasoner.server.auth import load_clients

    path = tmp_path / "clients.json"
    path.write_text(json.dumps({ISSUER: "https://ehr.example.org/jwks.json"}))
    with pytest.raises(InputError, match="not fetched"):
        load_clients(path)
    path.write_text(json.dumps({ISSUER: {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}))
    with pytest.raises(InputError, match="private or symmetric"):
        load_clients(path)


def test_a_decision_over_the_time_limit_is_busy_not_a_hang():
    import threading
    from types import SimpleNamespace

    import anyio

    from reasoner.server.decide import Busy
    from reasoner.server.service import Service

    release = threading.Event()
    svc = Service(SimpleNamespace(decision_timeout=0.5), None, None, None)

    def slow(wait):
        assert wait == 0.5
        release.wait(10)

    # without the limit `slow` would return (after 10 s) and no Busy would be raised
    with pytest.raises(Busy, match="longer than 0.5 s"):
        anyio.run(svc.run, slow)
    release.set()


def test_serve_refuses_a_bad_client_file_in_one_line(tmp_path):
    from click.testing import CliRunner

    from reasoner.cli.app import main

    bad = tmp_path / "clients.json"
    bad.write_text(json.dumps({ISSUER: "https://ehr.example.org/jwks.json"}))
    result = CliRunner().invoke(main, ["serve", "--store", str(tmp_path / "store"),
                                       "--cds-clients", str(bad)])
    assert result.exit_code == 2
    assert "not fetched" in result.output and "Traceback" not in result.output
