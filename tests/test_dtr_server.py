"""DTR over HTTP (reasoner/server/dtr.py, docs/dtr.md "Over HTTP"): the routes through
Starlette's TestClient (every refusal, nothing stored on one), and the questionnaire round trip
against a real `reasoner serve` on loopback with a real HTTP client."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reasoner.dtr.questionnaire import build_questionnaire, canonical
from reasoner.engines.fhir import validate_resource
from reasoner.server.dtr import routes
from reasoner.store import EmbeddedStore
from reasoner.vocab import DETERMINATION_BASE

from .conftest import CASES
from .server_harness import start, stop

POLICY = "lcd-l39240"
TOKEN = "dtr-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVISIONS = ("PREFIX prov: <http://www.w3.org/ns/prov#>\n"
             "SELECT ?new ?old WHERE { GRAPH ?new { ?new prov:wasRevisionOf ?old } }")


def onset_response(q: dict, day: str = "2025-12-01") -> dict:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": canonical(q),
            "status": "completed", "authored": "2026-04-10",
            "item": [{"linkId": "pain-onset-date", "answer": [{"valueDate": day}]}]}


@pytest.fixture(scope="module")
def stored(reasoner, tmp_path_factory):
    """A store with a pended and an approved determination; (location, pended, approved)."""
    location = tmp_path_factory.mktemp("dtr") / "store"
    store = EmbeddedStore(str(location))
    iris = []
    for name in ("fhir-pended-onset-after-d", "seed-l5-snrb"):
        case = reasoner.load_case(CASES / name)
        d = reasoner.determine(case, POLICY if name != "seed-l5-snrb" else "clinical-snrb")
        store.put(d.iri, reasoner.record_graph(d, case))
        iris.append(d.iri)
    store.close()
    return location, *iris


@pytest.fixture()
def client(reasoner, stored, tmp_path):
    import shutil

    location = tmp_path / "store"
    shutil.copytree(stored[0], location)
    store = EmbeddedStore(str(location))
    app = Starlette(routes=routes(store, reasoner, authorize=lambda request: request.headers.get(
        "authorization") == AUTH["Authorization"]))
    with TestClient(app) as c:
        yield c, store
    store.close()


def ident(iri: str) -> str:
    return iri[len(DETERMINATION_BASE):]


def test_the_questionnaire_of_a_stored_pended_determination(reasoner, stored, client):
    c, _ = client
    _, pended, _ = stored
    res = c.get(f"/dtr/{ident(pended)}/questionnaire", headers=AUTH)
    assert res.status_code == 200 and res.headers["content-type"] == "application/fhir+json"
    q = res.json()
    assert validate_resource(q) is None
    d = reasoner.determine(reasoner.load_case(CASES / "fhir-pended-onset-after-d"), POLICY)
    assert q == build_questionnaire(d, reasoner.kb)
    same = c.get("/fhir/Questionnaire", params={"determination": pended}, headers=AUTH)
    assert same.content == res.content


def test_answers_posted_back_re_decide_and_store_a_revision(stored, client):
    c, store = client
    _, pended, _ = stored
    q = c.get(f"/dtr/{ident(pended)}/questionnaire", headers=AUTH).json()
    res = c.post(f"/dtr/{ident(pended)}/questionnaire-response", json=onset_response(q),
                 headers=AUTH)
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["outcome"] == "approved" and body["revision_of"] == pended
    assert res.headers["location"].startswith("/determination?iri=")
    assert store.select_rows(REVISIONS) == [{"new": body["determination"], "old": pended}]
    same = c.post(f"/dtr/{ident(pended)}/questionnaire-response", json=onset_response(q),
                  headers=AUTH)
    assert same.status_code == 201 and same.json() == body  # the same answers, the same record
    assert len(store.records()) == 3
    again = c.get(f"/dtr/{ident(body['determination'])}/questionnaire", headers=AUTH)
    assert again.status_code == 409  # the revision is approved: nothing to ask


QR = (b'{"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "Q", '
      b'"item": [{"linkId": "x"}]}')
REFUSED = [
    ("no token", "get", None, {}, 401, "a bearer token is required"),
    ("wrong token", "post", b"{}", {"Authorization": "Bearer nope"}, 401, "bearer token"),
    ("malformed JSON", "post", b"{", AUTH, 400, "request body:line 1 column 2: not JSON"),
    ("another questionnaire", "post", QR, AUTH, 400,
     "request body:QuestionnaireResponse.questionnaire: answers questionnaire Q, but"),
    ("oversized", "post", b" " * 1_000_001, AUTH, 413, "over 1000000 bytes"),
]


@pytest.mark.parametrize("what,method,body,headers,status,message", REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_refusals_store_nothing(stored, client, what, method, body, headers, status, message):
    c, store = client
    _, pended, _ = stored
    path = f"/dtr/{ident(pended)}/questionnaire"
    if method == "get":
        res = c.get(path, headers=headers)
    else:
        res = c.post(path + "-response", content=body, headers=headers)
    assert res.status_code == status
    assert res.json()["resourceType"] == "OperationOutcome"
    assert message in res.json()["issue"][0]["diagnostics"]
    if status == 401:
        assert res.headers["www-authenticate"].startswith("Bearer")
    assert len(store.records()) == 2 and store.select_rows(REVISIONS) == []
    assert len(REFUSED) == 5


def test_an_unknown_link_id_is_refused_over_http(stored, client):
    c, store = client
    _, pended, _ = stored
    q = c.get(f"/dtr/{ident(pended)}/questionnaire", headers=AUTH).json()
    qr = onset_response(q) | {"item": [{"linkId": "x", "answer": [{"valueDate": "2025-12-01"}]}]}
    res = c.post(f"/dtr/{ident(pended)}/questionnaire-response", json=qr, headers=AUTH)
    assert res.status_code == 400
    assert res.json()["issue"][0]["diagnostics"] == \
        "request body:item 'x': unknown linkId: not an item of the questionnaire"
    assert store.select_rows(REVISIONS) == []


def test_not_found_and_not_pended(stored, client):
    c, _ = client
    _, _, approved = stored
    assert c.get("/dtr/no-such-case/x/questionnaire", headers=AUTH).status_code == 404
    res = c.get(f"/dtr/{ident(approved)}/questionnaire", headers=AUTH)
    assert res.status_code == 409 and "no questionnaire is needed" in res.text


def test_round_trip_against_a_real_server(stored, tmp_path):
    import shutil

    location = tmp_path / "store"
    shutil.copytree(stored[0], location)
    _, pended, _ = stored
    url, proc, _ = start(location, "--api-token", TOKEN)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            assert http.get(f"/dtr/{ident(pended)}/questionnaire").status_code == 401
            got = http.get(f"/dtr/{ident(pended)}/questionnaire", headers=AUTH)
            assert got.status_code == 200, got.text
            q = got.json()
            assert [i["linkId"] for i in q["item"]] == ["pain-onset-date"]
            res = http.post(f"/dtr/{ident(pended)}/questionnaire-response",
                            json=onset_response(q, "2026-04-01"), headers=AUTH)
            assert res.status_code == 201, res.text
            body = res.json()
            assert body["outcome"] == "denied" and body["clinician_review_required"] is True
            page = http.get(res.headers["location"])
            assert page.status_code == 200
    finally:
        stop(proc)
