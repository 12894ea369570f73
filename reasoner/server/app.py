"""The ASGI application of `reasoner serve` (Starlette): routes, security headers, host and
cross-site checks, body limits. See docs/security.md for what it promises.

Routes
- ``GET|POST /sparql``: SPARQL 1.1 Protocol (https://www.w3.org/TR/sparql11-protocol/). Query by
  ``GET ?query=``, ``POST`` form (``query=``) or ``POST application/sparql-query``; results by the
  Accept header (§2.1.4) or ``?format=``. The default graph is the union of the records and the
  knowledge graph. Update (``POST`` form ``update=`` or ``application/sparql-update``) only with
  ``Authorization: Bearer <write token>``: 401 without or with a wrong one, 403 on a read-only
  server. Queries run in killable workers under time, row, byte and memory limits
  (`reasoner.server.queries`); SERVICE, LOAD and remote FROM are refused
  (`reasoner.server.sparqlcheck`).
- ``GET /``: the query page (YASGUI, shipped in ``reasoner/web/yasgui/``; no CDN);
  ``/?query=...&run=1`` opens with that query and runs it (not when the link came from another
  site).
- ``GET /determinations``, ``GET /determination?iri=<determination IRI>``: the records' pages.
- The payer's service (docs/service.md): ``GET /cds-services`` and ``POST /cds-services/{id}``
  (Da Vinci CRD over CDS Hooks 2.0, `reasoner.server.crd`), ``POST /fhir/Claim/$submit`` and
  ``$inquire`` (Da Vinci PAS, `reasoner.server.pas`); callers are checked by
  `reasoner.server.auth` (CDS client JWTs, bearer tokens).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import InputError
from ..vocab import PREFIXES
from .pages import PageMaker, list_context
from .queries import Limits, QueryError, QueryRunner
from .sparqlcheck import QueryRefused, check_query

WEB = Path(__file__).resolve().parent.parent / "web"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")

DEFAULT_QUERY = """PREFIX nr: <https://w3id.org/necessity/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>

SELECT ?determination ?label ?outcome ?serviceDate WHERE {
  GRAPH ?determination {
    ?determination a nr:Determination ; rdfs:label ?label ; nr:outcome ?outcome .
    OPTIONAL { ?determination nr:serviceDate ?serviceDate }
  }
}
ORDER BY ?determination
LIMIT 100
"""

# No inline script anywhere (the query page reads its query from a data- attribute); YASGUI
# sets style attributes, hence 'unsafe-inline' for styles only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


@dataclass
class Settings:
    """What the operator configures (CLI options of `reasoner serve`)."""

    write_token: str | None = None
    hosts: tuple[str, ...] = LOOPBACK_HOSTS
    limits: Limits = field(default_factory=Limits)
    max_body: int = 8 * 1024 ** 2     # bytes of a request body
    body_timeout: float = 30.0        # seconds to receive a request body
    page_timeout: float = 15.0        # seconds a determination page waits for its letter
    root: Path | None = None          # project root of the knowledge base (pages)
    public_url: str | None = None     # the service's public base URL (JWT aud, card links)
    decision_timeout: float = 30.0    # seconds a hook or $submit waits for its decision
    cds_clients: dict = field(default_factory=dict)   # iss -> public keys (auth.load_clients)
    api_tokens: tuple[str, ...] = ()  # bearer tokens accepted by PAS and DTR


class SecurityHeaders:
    """Adds the security headers to every response (pure ASGI: streaming is untouched)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


class CutStreamingResponse(StreamingResponse):
    """A streamed result that a limit may cut: on `QueryError` after the first chunk it stops
    without the final (empty) chunk, and uvicorn closes the connection, so the client sees an
    incomplete response instead of a result that looks whole."""

    async def stream_response(self, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except QueryError:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _QuietCut(logging.Filter):
    """Drops uvicorn's error line for a response cut on purpose (`CutStreamingResponse`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietCut())


def error(status: int, message: str, headers: dict | None = None) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


class TooLarge(Exception):
    pass


def cross_site(request: Request) -> bool:
    """True when a browser says the request comes from another site (Fetch Metadata, or the
    Origin header for older browsers). Non-browser clients send neither and are not affected."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    parts = urllib.parse.urlsplit(origin)
    return origin == "null" or parts.netloc.lower() != host.lower()


def make_app(store, settings: Settings | None = None) -> Starlette:
    """The application over `store` (an `EmbeddedStore` holding the knowledge graph)."""
    settings = settings or Settings()
    prefixes = {k: str(v) for k, v in PREFIXES.items()}
    runner = QueryRunner(store, settings.limits, prefixes)
    pages = PageMaker(settings.root)
    env = Environment(loader=FileSystemLoader(str(WEB / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    update_lock = anyio.Lock()

    def html(template: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**context), status_code=status,
                            headers={"Cache-Control": "no-store"})

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body:
            raise TooLarge()
        chunks, size = [], 0
        with anyio.fail_after(settings.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_body:
                    raise TooLarge()
                chunks.append(chunk)
        return b"".join(chunks)

    async def run_query(request: Request, text: str, params: dict) -> Response:
        if params.get("default-graph-uri") or params.get("named-graph-uri"):
            return error(400, "default-graph-uri / named-graph-uri are not supported: "
                              "use GRAPH in the query")
        accept = request.headers.get("accept")
        fmt = (params.get("format") or [None])[0]
        if fmt:
            accept = {"json": "application/sparql-results+json",
                      "xml": "application/sparql-results+xml", "csv": "text/csv",
                      "tsv": "text/tab-separated-values"}.get(fmt, fmt)
        try:
            media, body = await runner.start(text, accept, request.is_disconnected)
        except QueryError as exc:
            return error(exc.status, str(exc))
        ctype = media + ("; charset=utf-8" if media.startswith("text/") or "json" in media
                         or "xml" in media else "")
        return CutStreamingResponse(body, media_type=ctype,
                                    headers={"Vary": "Accept", "Cache-Control": "no-store"})

    async def run_update(request: Request, text: str) -> Response:
        if settings.write_token is None:
            return error(403, "this endpoint is read-only (start it with --write-token)")
        if not authorized(request):
            return unauthorized()
        try:
            await anyio.to_thread.run_sync(check_query, text, settings.limits.allow_service,
                                           graph_exists)
            async with update_lock:
                await anyio.to_thread.run_sync(store.update, text)
                await anyio.to_thread.run_sync(runner.refresh)
        except (InputError, QueryRefused) as exc:
            return error(400, str(exc))
        return Response(status_code=204)

    def graph_exists(iri: str) -> bool:
        import pyoxigraph as ox

        return store.store.contains_named_graph(ox.NamedNode(iri))

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization") or ""
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return bool(given) and hmac.compare_digest(given.encode(), settings.write_token.encode())

    def unauthorized() -> Response:
        return error(401, "update needs Authorization: Bearer <write token>",
                     {"WWW-Authenticate": 'Bearer realm="reasoner"'})

    async def sparql_get(request: Request) -> Response:
        params = urllib.parse.parse_qs(request.url.query)
        if "update" in params:
            return error(400, "SPARQL update must be sent with POST")
        if "query" not in params:
            return html("query.html", title="Necessity Reasoner: SPARQL", query=DEFAULT_QUERY,
                        run=False)
        if cross_site(request):
            return error(403, "cross-site query refused: open the query page of this server")
        return await run_query(request, params["query"][0], params)

    async def sparql_post(request: Request) -> Response:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        params = urllib.parse.parse_qs(request.url.query)
        update = ctype == "application/sparql-update"
        if update and settings.write_token and not authorized(request):
            return unauthorized()  # before reading a body nobody may send
        try:
            body = await read_body(request)
            if ctype == "application/x-www-form-urlencoded":
                if cross_site(request):
                    return error(403, "cross-site form refused: a form from another site may "
                                      "not query or update this server")
                form = urllib.parse.parse_qs(body.decode("utf-8"))
                if "update" in form:
                    return await run_update(request, form["update"][0])
                if "query" in form:
                    return await run_query(request, form["query"][0], {**params, **form})
                return error(400, "form has neither query nor update")
            if ctype == "application/sparql-query":
                return await run_query(request, body.decode("utf-8"), params)
            if ctype == "application/sparql-update":
                return await run_update(request, body.decode("utf-8"))
        except TooLarge:
            return error(413, f"request body larger than {settings.max_body} bytes")
        except TimeoutError:
            return error(408, "request body not received in time")
        except UnicodeDecodeError:
            return error(400, "the request body is not UTF-8")
        return error(415, "send application/sparql-query, application/sparql-update or an "
                          "HTML form")

    async def query_page(request: Request) -> Response:
        params = request.query_params
        query = params.get("query", DEFAULT_QUERY)
        run = params.get("run", "0") in ("1", "true", "yes") and not cross_site(request)
        return html("query.html", title="Necessity Reasoner: SPARQL", query=query, run=run)

    async def determinations(request: Request) -> Response:
        try:
            context = await anyio.to_thread.run_sync(list_context, store)
        except InputError as exc:
            return error(400, str(exc))
        return html("list.html", **context)

    async def determination(request: Request) -> Response:
        iri = request.query_params.get("iri", "")
        if not iri:
            return error(400, "give ?iri=<determination IRI>")
        wait = settings.page_timeout
        try:
            loaded = await anyio.to_thread.run_sync(pages.load, store, iri)
        except InputError as exc:
            return error(400, str(exc))
        if loaded is None:
            return error(404, "no determination record with this IRI")
        try:
            with anyio.fail_after(wait):
                d, letter, notes = await anyio.to_thread.run_sync(
                    pages.rederive, loaded, wait / 2, abandon_on_cancel=True)
        except TimeoutError:  # the thread finishes on its own; this page goes without
            d, letter, notes = None, None, [
                f"The letter is not shown: re-deriving it took longer than {wait:g} s; reload "
                "this page later."]
        context = await anyio.to_thread.run_sync(pages.context, loaded, d, letter, notes)
        return html("determination.html", **context)

    from .auth import Auth
    from .decide import Decider, Refresher
    from .service import Service

    refresher = Refresher(runner)
    auth = Auth(settings.cds_clients, settings.api_tokens)
    service = Service(settings, auth, Decider(store, pages, on_stored=refresher.mark),
                      read_body)

    async def refresh_loop():
        while True:  # the SPARQL workers see the service's new records within seconds
            await anyio.sleep(refresher.every)
            if refresher.pending:
                await anyio.to_thread.run_sync(refresher.tick)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(refresh_loop)
            yield
            tasks.cancel_scope.cancel()
        runner.close()

    routes = [
        Route("/sparql", sparql_get, methods=["GET", "HEAD"]),
        Route("/sparql", sparql_post, methods=["POST"]),
        Route("/", query_page, methods=["GET", "HEAD"]),
        Route("/query", query_page, methods=["GET", "HEAD"]),
        Route("/index.html", query_page, methods=["GET", "HEAD"]),
        Route("/determinations", determinations, methods=["GET", "HEAD"]),
        Route("/determination", determination, methods=["GET", "HEAD"]),
        *service_routes(service),
        Mount("/yasgui", StaticFiles(directory=str(WEB / "yasgui")), name="yasgui"),
        Mount("/static", StaticFiles(directory=str(WEB / "static")), name="static"),
    ]
    # DTR (reasoner/server/dtr.py): questionnaires of pended determinations and their answers,
    # behind the same caller check as PAS (an operator token or a CDS client JWT).
    from .dtr import routes as dtr_routes
    routes += dtr_routes(store, pages.reasoner, dtr_caller, after_store=runner.refresh,
                         lock=pages.lock)
    hosts = sorted({h.lower() for h in settings.hosts})
    app = Starlette(routes=routes, middleware=[
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
    ], lifespan=lifespan)
    app.state.runner, app.state.pages, app.state.settings = runner, pages, settings
    app.state.auth, app.state.service = auth, service
    return app


def dtr_caller(request):
    """DTR's `authorize`: True for an accepted caller (`auth.require_bearer`, the PAS rule),
    else the refusal as an OperationOutcome response."""
    from .auth import AuthError, require_bearer
    from .service import auth_refused

    try:
        require_bearer(request)
    except AuthError as exc:
        return auth_refused(exc)
    return True


def service_routes(service) -> list:
    """The payer's endpoints: CRD and PAS (DTR's are added by `make_app`)."""
    from . import crd, pas

    routes = [*crd.routes(service), *pas.routes(service)]
    return routes
