"""What the payer's endpoints (CRD, PAS, and DTR when mounted) share: the caller check, the
JSON body under the size and time limits, the decision under its time limit, and errors as
FHIR OperationOutcomes (https://hl7.org/fhir/R4/operationoutcome.html).

Nothing here logs a request body or a message about one: messages can quote patient data, so
they go back to the (authenticated) caller only, never to the server's log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import InputError
from .auth import Auth, AuthError
from .decide import Busy, Decider

FHIR_JSON = "application/fhir+json"
log = logging.getLogger("reasoner.server")


class BadRequest(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def outcome(status: int, message: str, code: str = "invalid", headers: dict | None = None,
            media_type: str = FHIR_JSON) -> JSONResponse:
    """An OperationOutcome with one issue (severity error) and the HTTP status."""
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": message}]}
    return JSONResponse(body, status_code=status, headers=headers, media_type=media_type)


def auth_refused(exc: AuthError) -> JSONResponse:
    code = "login" if exc.status == 401 else "forbidden"
    return outcome(exc.status, exc.message, code, exc.headers())


@dataclass
class Service:
    """The state the endpoints use: the settings, the caller check and the decider."""

    settings: object
    auth: Auth
    decider: Decider
    read_body: object   # app.read_body: the size and time limits of every request body

    async def json_body(self, request: Request) -> dict:
        from .app import TooLarge

        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype not in ("application/json", FHIR_JSON, ""):
            raise BadRequest(415, "send application/json or application/fhir+json")
        try:
            body = await self.read_body(request)
        except TooLarge:
            raise BadRequest(413, f"request body larger than {self.settings.max_body} bytes",
                             "too-costly") from None
        except TimeoutError:
            raise BadRequest(408, "request body not received in time", "timeout") from None
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise BadRequest(400, "the request body is not UTF-8") from None
        except RecursionError:
            raise BadRequest(400, "JSON nested too deep") from None
        except json.JSONDecodeError as exc:
            raise BadRequest(400, f"not JSON: {exc.msg} (line {exc.lineno} column "
                                  f"{exc.colno})") from None
        if not isinstance(data, dict):
            raise BadRequest(400, "the body is not a JSON object")
        return data

    async def run(self, fn):
        """`fn(wait)` in a worker thread under the decision time limit; `wait` is the
        time left for it to get the reasoner. Over the limit: `Busy` (the thread finishes on
        its own and its records are still written whole)."""
        limit = self.settings.decision_timeout
        try:
            with anyio.fail_after(limit):
                return await anyio.to_thread.run_sync(lambda: fn(limit),
                                                      abandon_on_cancel=True)
        except TimeoutError:
            raise Busy(f"the decision took longer than {limit:g} s") from None


async def guarded(handler, request: Request):
    """Runs an endpoint and turns its refusals into OperationOutcomes; an unexpected error is
    logged by type only (no message: it could quote the request) and answered 500."""
    try:
        return await handler(request)
    except AuthError as exc:
        return auth_refused(exc)
    except BadRequest as exc:
        return outcome(exc.status, exc.message, exc.code)
    except InputError as exc:
        return outcome(400, str(exc))
    except Busy as exc:
        return outcome(503, f"{exc}; try again", "transient", {"Retry-After": "5"})
    except Exception as exc:  # noqa: BLE001 - the answer must stay an OperationOutcome
        log.error("internal error in %s: %s", request.url.path, type(exc).__name__)
        return outcome(500, "internal error", "exception")
