"""DTR over HTTP (Da Vinci DTR; docs/dtr.md, "Over HTTP"): the Questionnaire of a stored pended
determination, and a QuestionnaireResponse posted back to re-decide it.

- ``GET /dtr/{determination id}/questionnaire`` (also ``GET /fhir/Questionnaire?determination=
  <id or IRI>``): the FHIR R4 Questionnaire (``application/fhir+json``); 404 for no such record,
  409 when the determination is not pended (no questionnaire is needed).
- ``POST /dtr/{determination id}/questionnaire-response`` (FHIR JSON body): the answers merged
  into the recorded case and decided again; 201 with the new determination's JSON, stored as a
  new record that names the one it revises (``prov:wasRevisionOf``); ``Location`` is its page.
  Bad input is 400 with a FHIR ``OperationOutcome`` whose diagnostics is the one-line error
  (naming the item); nothing is stored.

The determination id is its IRI after ``https://w3id.org/necessity/determination/``. Every
request must pass ``authorize(request)`` (the service's bearer-token check, given by whoever
mounts these routes): it returns True, or False (401), or a Response of its own. Decisions run
in a worker thread, one at a time (the knowledge base's graphs are not shared across threads).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InputError, ReasonerError

FHIR_JSON = "application/fhir+json"
MAX_BODY = 1_000_000  # bytes of a QuestionnaireResponse


def outcome(status: int, code: str, message: str) -> Response:
    """A FHIR R4 OperationOutcome with one issue."""
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": message}]}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def routes(store, reasoner, authorize: Callable[[Request], object],
           after_store: Callable[[], None] | None = None,
           lock: threading.Lock | None = None) -> list[Route]:
    """The DTR routes over `store` (a DecisionStore), deciding with `reasoner` (an api.Reasoner,
    or a function returning one, called on first use). `after_store` runs after a new record is
    stored (e.g. to refresh the query workers' view of the store). `lock` is held while the
    knowledge base is loaded or used: give the lock of whoever else uses the same reasoner (the
    determination pages), since rdflib's SPARQL parser and graphs are not thread-safe."""
    from ..dtr.answers import parse_response, redecide
    from ..dtr.questionnaire import NotPended, build_questionnaire, dumps
    from ..dtr.records import determination_iri, stored_decision

    lock = lock or threading.Lock()
    loaded = []

    def get_reasoner():
        if not loaded:
            loaded.append(reasoner() if callable(reasoner) else reasoner)
        return loaded[0]

    def load(ident: str):
        iri = determination_iri(ident)
        record = store.record(iri)
        if not len(record):
            raise LookupError(iri)
        r = get_reasoner()
        stored = stored_decision(r.kb, record, iri)
        earlier = r.determine(stored.case, stored.policy_id, stored.version)
        earlier.iri = iri  # the stored record's identity (a revision keeps its own IRI)
        return stored, earlier

    def make_questionnaire(ident: str) -> dict:
        with lock:
            _, earlier = load(ident)
            return build_questionnaire(earlier, get_reasoner().kb)

    def answer(ident: str, body: bytes) -> dict:
        with lock:
            stored, earlier = load(ident)
            source = "request body"
            response = parse_response(body, source)
            r = get_reasoner()
            revision, merged = redecide(r, stored.case, earlier, response, source)
            store.put(revision.iri, r.record_graph(revision, merged))
            if after_store is not None:
                after_store()
            return revision.to_dict()

    def denied(request: Request) -> Response | None:
        verdict = authorize(request)
        if verdict is True:
            return None
        if isinstance(verdict, Response):
            return verdict
        refused = outcome(401, "login", "a bearer token is required")  # FHIR issue type "login"
        refused.headers["WWW-Authenticate"] = 'Bearer realm="reasoner"'
        return refused

    async def run(fn, *args):
        try:
            return await anyio.to_thread.run_sync(fn, *args), None
        except LookupError as exc:
            return None, outcome(404, "not-found", f"no stored determination {exc.args[0]}")
        except NotPended as exc:
            return None, outcome(409, "business-rule", str(exc))
        except InputError as exc:
            return None, outcome(400, "invalid", str(exc))
        except ReasonerError as exc:
            return None, outcome(500, "exception", str(exc))

    async def questionnaire(request: Request) -> Response:
        refused = denied(request)
        if refused is not None:
            return refused
        ident = request.path_params.get("ident") or request.query_params.get("determination")
        if not ident:
            return outcome(400, "required", "name the determination (?determination=<id>)")
        result, failure = await run(make_questionnaire, ident)
        if failure is not None:
            return failure
        return Response(dumps(result), media_type=FHIR_JSON)

    async def response(request: Request) -> Response:
        refused = denied(request)
        if refused is not None:
            return refused
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return outcome(413, "too-costly", f"the body is over {MAX_BODY} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return outcome(413, "too-costly", f"the body is over {MAX_BODY} bytes")
        result, failure = await run(answer, request.path_params["ident"], body)
        if failure is not None:
            return failure
        page = "/determination?iri=" + urllib.parse.quote(result["determination"], safe="")
        return Response(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                        status_code=201, media_type="application/json",
                        headers={"Location": page})

    return [
        Route("/dtr/{ident:path}/questionnaire", questionnaire, methods=["GET"]),
        Route("/dtr/{ident:path}/questionnaire-response", response, methods=["POST"]),
        Route("/fhir/Questionnaire", questionnaire, methods=["GET"]),
    ]

