"""`reasoner serve`: the decision store over HTTP (standard library only).

Routes
- ``GET|POST /sparql``: SPARQL 1.1 Protocol (https://www.w3.org/TR/sparql11-protocol/).
  Query by ``GET ?query=``, ``POST`` form (``query=``) or ``POST application/sparql-query``;
  results as SPARQL JSON, XML, CSV or TSV (Turtle, N-Triples, RDF/XML or JSON-LD for
  CONSTRUCT/DESCRIBE) by the Accept header (§2.1.4 conneg). The default graph is the union of the
  records and the knowledge graph. Update (``POST`` form ``update=`` or
  ``application/sparql-update``) only when the server was started with a write token and the
  request sends ``Authorization: Bearer <token>``: otherwise 401 (no or wrong token) or 403 (the
  server is read-only), and nothing changes.
- ``GET /``: the query page (YASGUI, files shipped in ``reasoner/web/yasgui/``; no CDN).
  ``/?query=...&run=1`` opens with that query and runs it.
- ``GET /determinations``: every stored record, linked to its page.
- ``GET /determination?iri=<determination IRI>``: one determination: its letter and its trace
  (criteria with verdicts, the facts that decided them, passages and sources).

Why the standard library: ``http.server.ThreadingHTTPServer`` is enough for a loopback analyst
tool; it adds no dependency. pyoxigraph's Store is safe to share between threads; the Reasoner
(rdflib, pySHACL) is not, so page rendering holds a lock. Binds 127.0.0.1 by default.
"""

from __future__ import annotations

import hmac
import html
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import InputError, ReasonerError
from .model import reference_sort_key
from .store import KB_GRAPH, EmbeddedStore, safe_iri
from .vocab import NR

WEB = Path(__file__).resolve().parent / "web"
MAX_BODY = 64 * 1024 * 1024

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


class ReasonerHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store: EmbeddedStore, write_token: str | None, root=None):
        super().__init__(address, Handler)
        self.store = store
        self.write_token = write_token
        self.root = root
        self._reasoner = None
        self.lock = threading.Lock()

    def reasoner(self):
        if self._reasoner is None:
            from .api import Reasoner

            self._reasoner = Reasoner.load(self.root)
        return self._reasoner


def make_server(store: EmbeddedStore, host: str = "127.0.0.1", port: int = 8000,
                write_token: str | None = None, root=None) -> ReasonerHTTPServer:
    """A server over `store` (not yet serving: call `serve_forever`). Loads the knowledge graph
    into the store first, so that queries can join records with criteria and evidence."""
    store.ensure_kb(root)
    return ReasonerHTTPServer((host, port), store, write_token or None, root)


class Handler(BaseHTTPRequestHandler):
    server: ReasonerHTTPServer
    server_version = "necessity-reasoner"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet by default; errors still go to stderr
        pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes | str, ctype: str, headers: dict | None = None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict | None = None):
        self._send(status, message + "\n", "text/plain; charset=utf-8", headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise InputError("request body too large")
        return self.rfile.read(length) if length else b""

    # ------------------------------------------------------------------ routes
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query)
        path = url.path
        try:
            if path == "/sparql":
                if "update" in params:
                    return self._error(400, "SPARQL update must be sent with POST")
                if "query" not in params:
                    return self._send(200, self._page_query(DEFAULT_QUERY, run=False),
                                      "text/html; charset=utf-8")
                return self._query(params["query"][0], params)
            if path in ("/", "/query", "/index.html"):
                query = params.get("query", [DEFAULT_QUERY])[0]
                run = params.get("run", ["0"])[0] in ("1", "true", "yes")
                return self._send(200, self._page_query(query, run), "text/html; charset=utf-8")
            if path.startswith("/yasgui/"):
                return self._static(path[len("/yasgui/"):])
            if path == "/determinations":
                return self._send(200, self._page_list(), "text/html; charset=utf-8")
            if path == "/determination":
                iri = params.get("iri", [""])[0]
                if not iri:
                    return self._error(400, "give ?iri=<determination IRI>")
                page = self._page_determination(iri)
                if page is None:
                    return self._error(404, f"no record {iri}")
                return self._send(200, page, "text/html; charset=utf-8")
            return self._error(404, "not found")
        except ReasonerError as exc:
            return self._error(400, str(exc))

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/sparql":
            return self._error(404, "not found")
        try:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            body = self._body()
            params = urllib.parse.parse_qs(url.query)
            if ctype == "application/x-www-form-urlencoded":
                form = urllib.parse.parse_qs(body.decode("utf-8"))
                if "update" in form:
                    return self._update(form["update"][0])
                if "query" in form:
                    return self._query(form["query"][0], {**params, **form})
                return self._error(400, "form has neither query nor update")
            if ctype == "application/sparql-query":
                return self._query(body.decode("utf-8"), params)
            if ctype == "application/sparql-update":
                return self._update(body.decode("utf-8"))
            return self._error(415, "send application/sparql-query, application/sparql-update "
                                    "or an HTML form")
        except ReasonerError as exc:
            return self._error(400, str(exc))
        except UnicodeDecodeError:
            return self._error(400, "the request body is not UTF-8")

    # ------------------------------------------------------------------ SPARQL
    def _query(self, text: str, params: dict):
        if params.get("default-graph-uri") or params.get("named-graph-uri"):
            return self._error(400, "default-graph-uri / named-graph-uri are not supported: "
                                    "use GRAPH in the query")
        accept = self.headers.get("Accept")
        fmt = params.get("format", [None])[0]  # e.g. ?format=json, as many endpoints allow
        if fmt:
            accept = {"json": "application/sparql-results+json",
                      "xml": "application/sparql-results+xml", "csv": "text/csv",
                      "tsv": "text/tab-separated-values"}.get(fmt, fmt)
        try:
            data, media = self.server.store.serialize_query(text, accept)
        except InputError as exc:
            return self._error(400, str(exc))
        ctype = media + ("; charset=utf-8" if media.startswith("text/") or "json" in media
                         or "xml" in media else "")
        return self._send(200, data, ctype, {"Vary": "Accept", "Cache-Control": "no-store"})

    def _update(self, text: str):
        token = self.server.write_token
        if token is None:
            return self._error(403, "this endpoint is read-only (start it with --write-token)")
        auth = self.headers.get("Authorization") or ""
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return self._error(401, "update needs Authorization: Bearer <write token>",
                               {"WWW-Authenticate": 'Bearer realm="reasoner"'})
        try:
            self.server.store.update(text)
        except InputError as exc:
            return self._error(400, str(exc))
        return self._send(204, b"", "text/plain")

    # ------------------------------------------------------------------ pages
    def _static(self, name: str):
        folder = (WEB / "yasgui").resolve()
        target = (folder / name).resolve()
        if folder not in target.parents or not target.is_file():
            return self._error(404, "not found")
        ctype = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}.get(
            target.suffix, "application/octet-stream")
        return self._send(200, target.read_bytes(), ctype, {"Cache-Control": "max-age=3600"})

    def _page_query(self, query: str, run: bool) -> str:
        config = json.dumps({"query": query, "run": run})
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Necessity Reasoner: SPARQL</title>
<link rel="stylesheet" href="/yasgui/yasgui.min.css">
<style>{_CSS} .yasgui .autocompleteWrapper {{ display: none !important; }}</style>
</head><body>
<header><strong>Necessity Reasoner</strong> &middot; SPARQL over decision records and the
knowledge graph &middot; endpoint <code>/sparql</code> &middot;
<a href="/determinations">determinations</a></header>
<div id="yasgui"></div>
<script src="/yasgui/yasgui.min.js"></script>
<script>
const cfg = {config};
const yasgui = new Yasgui(document.getElementById("yasgui"), {{
  requestConfig: {{ endpoint: new URL("/sparql", window.location.href).href, method: "POST" }},
  copyEndpointOnNewTab: false,
  persistenceId: null,
  yasqe: {{ autocompleters: ["variables"] }},
}});
const tab = yasgui.getTab();
tab.setQuery(cfg.query);
if (cfg.run) {{
  tab.getYasr().on("drawn", () => document.body.setAttribute("data-results", "drawn"));
  tab.getYasqe().query();
}}
</script>
</body></html>
"""

    def _page_list(self) -> str:
        rows = self.server.store.select_rows(f"""
            SELECT ?d ?label ?outcome ?date WHERE {{ GRAPH ?d {{
              ?d a <{NR.Determination}> ; <{NR.outcome}> ?outcome .
              OPTIONAL {{ ?d <http://www.w3.org/2000/01/rdf-schema#label> ?label }}
              OPTIONAL {{ ?d <{NR.serviceDate}> ?date }} }} }} ORDER BY ?d""")
        items = "".join(
            f'<tr><td><a href="/determination?iri={urllib.parse.quote(r["d"], safe="")}">'
            f'{html.escape(r.get("label") or r["d"])}</a></td>'
            f'<td class="{_short(r["outcome"]).lower()}">{_short(r["outcome"]).lower()}</td>'
            f'<td>{html.escape(r.get("date", ""))}</td></tr>'
            for r in rows)
        return _page("Determinations", f"""
<h1>Determinations ({len(rows)})</h1>
<table><tr><th>determination</th><th>outcome</th><th>service date</th></tr>{items}</table>""")

    def _page_determination(self, iri: str) -> str | None:
        from rdflib import URIRef
        from rdflib.namespace import RDFS

        iri = safe_iri(iri)
        record = self.server.store.record(iri)
        det = URIRef(iri)
        if (det, None, None) not in record:
            return None
        stored = {}
        for result in record.objects(det, NR.hasCriterionResult):
            stored[str(record.value(result, NR.referenceId))] = _short(record.value(result, NR.verdict))
        outcome = _short(record.value(det, NR.outcome)).lower()
        label = str(record.value(det, RDFS.label) or iri)
        notes, letter, d = [], None, None
        try:
            with self.server.lock:
                d, letter, changed = self._rederive(record, det)
            if changed:
                notes.append(f"The knowledge base has changed since this decision ({changed} "
                             "file(s) differ from the hashes in the record): the letter and trace "
                             "below are re-derived with the current files.")
            # stored verdicts are IRIs (nr:Met), fresh ones strings ('met'): compare as strings
            if d is not None and (d.outcome != outcome or {c.ref: c.status for c in d.criteria}
                                  != {ref: _verdict(v) for ref, v in stored.items()}):
                notes.append("Re-deriving with the current knowledge base gives a different "
                             f"result ({d.outcome}); the stored verdicts are shown in the table.")
        except ReasonerError as exc:
            notes.append(f"The letter cannot be re-derived: {exc}")
        body = [f"<h1>{html.escape(label)}</h1>",
                f'<p class="iri"><code>{html.escape(iri)}</code></p>',
                f'<p>Outcome: <strong class="{outcome}">{outcome}</strong></p>']
        body += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
        body.append('<h2>Trace</h2>' + self._trace_table(record, det, d))
        if letter:
            body.append(f'<h2>Letter</h2><pre class="letter">{html.escape(letter)}</pre>')
        body.append(self._hash_table(record, det))
        return _page(label, "\n".join(body))

    def _rederive(self, record, det):
        """The Determination and letter, re-derived from the case facts the record holds."""
        from rdflib import Graph

        from .case import case_from_graph
        from .kb import file_hash

        r = self.server.reasoner()
        base = str(det)
        version = record.value(det, NR.underPolicyVersion)
        facts = Graph()
        for s, p, o in record:
            if str(s).startswith(base) or s == version or str(s).endswith("/software/reasoner"):
                continue
            facts.add((s, p, o))
        policy_id = version_name = None
        for pack in r.kb.packs.values():
            for v in pack.versions:
                if v.iri == version:
                    policy_id, version_name = pack.policy_id, v.version
        if policy_id is None:
            raise InputError(f"policy version {version} is not in the knowledge base")
        case = case_from_graph(facts, source=base, kind="turtle", default_id="record")
        d = r.determine(case, policy_id, version_name)
        changed = 0
        activity = next(record.objects(det, URIRef_PROV_GEN), None)
        for used in record.objects(activity, URIRef_PROV_USED) if activity is not None else ():
            path, digest = record.value(used, RDFS_LABEL), record.value(used, NR.contentHash)
            if path is None or digest is None:
                continue
            target = r.kb.root / str(path)
            if not target.exists() or f"sha256:{file_hash(target)}" != str(digest):
                changed += 1
        return d, r.letter(d), changed

    def _trace_table(self, record, det, d) -> str:
        from rdflib.namespace import RDFS

        derived = {c.ref: c for c in d.criteria} if d is not None else {}
        rows = []
        results = sorted(record.objects(det, NR.hasCriterionResult),
                         key=lambda n: reference_sort_key(str(record.value(n, NR.referenceId))))
        for node in results:
            ref = str(record.value(node, NR.referenceId))
            verdict = _verdict(_short(record.value(node, NR.verdict)))
            c = derived.get(ref)
            if c is not None:
                facts = "".join(
                    f"<li>{html.escape(f.text)}"
                    f"{' <em>(inferred' + (': ' + html.escape(f.inference) if f.inference else '') + ')</em>' if f.inferred else ''}"
                    f"{' &mdash; <small>' + html.escape(f.source) + '</small>' if f.source else ''}</li>"
                    for f in c.facts)
                sources = "".join(f"<li>{html.escape(cite.text)}</li>" for cite in c.citations)
                passage = (f'<blockquote>{html.escape(c.passage.text)}</blockquote>'
                           if c.passage and c.passage.text else "")
                message = c.message
            else:
                facts = "".join(f"<li><code>{html.escape(str(f))}</code>"
                                f"{' <em>(inferred)</em>' if p == NR.decidedByInference else ''}</li>"
                                for p in (NR.decidedBy, NR.decidedByInference)
                                for f in record.objects(node, p))
                sources = "".join(f"<li><code>{html.escape(str(s))}</code></li>"
                                  for s in record.objects(node, NR.citesSource))
                passage = ""
                message = str(record.value(node, NR.message) or "")
            label = str(record.value(node, RDFS.label) or ref)
            rows.append(
                f'<tr><td><strong>{html.escape(ref)}</strong><br>{html.escape(label)}</td>'
                f'<td class="{verdict}">{verdict}</td>'
                f'<td>{html.escape(message)}{passage}</td><td><ul>{facts}</ul></td>'
                f'<td><ul>{sources}</ul></td></tr>')
        return ('<table class="trace"><tr><th>criterion</th><th>verdict</th><th>message and '
                'passage</th><th>facts</th><th>sources</th></tr>' + "".join(rows) + "</table>")

    def _hash_table(self, record, det) -> str:
        activity = next(record.objects(det, URIRef_PROV_GEN), None)
        rows = []
        for used in record.objects(activity, URIRef_PROV_USED) if activity is not None else ():
            path, digest = record.value(used, RDFS_LABEL), record.value(used, NR.contentHash)
            if path is not None and digest is not None:
                rows.append((str(path), str(digest)))
        items = "".join(f"<tr><td><code>{html.escape(p)}</code></td><td><code>{html.escape(h)}"
                        f"</code></td></tr>" for p, h in sorted(rows))
        return (f"<details><summary>Files used ({len(rows)}, sha256)</summary><table>{items}"
                "</table></details>")


from rdflib import URIRef as _URIRef  # noqa: E402

URIRef_PROV_GEN = _URIRef("http://www.w3.org/ns/prov#wasGeneratedBy")
URIRef_PROV_USED = _URIRef("http://www.w3.org/ns/prov#used")
RDFS_LABEL = _URIRef("http://www.w3.org/2000/01/rdf-schema#label")


def _short(node) -> str:
    text = str(node or "")
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _verdict(name: str) -> str:
    return {"Met": "met", "Unmet": "unmet", "Missing": "missing",
            "NotApplicable": "not-applicable"}.get(name, name)



_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #1d2430; }
header { padding: .6rem 0; border-bottom: 1px solid #d0d7de; margin-bottom: .6rem; }
table { border-collapse: collapse; margin: .5rem 0; }
td, th { border: 1px solid #d0d7de; padding: .3rem .5rem; vertical-align: top; text-align: left; }
.met, .approved { color: #1a7f37; } .unmet, .denied { color: #cf222e; }
.missing, .pended { color: #9a6700; } .not-applicable { color: #57606a; }
.note { background: #fff8c5; padding: .4rem .6rem; }
pre.letter { white-space: pre-wrap; background: #f6f8fa; padding: 1rem; max-width: 60rem; }
blockquote { margin: .3rem 0 0 .5rem; color: #57606a; font-size: .9em; }
ul { margin: 0; padding-left: 1.1rem; }
"""


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<header><strong>Necessity Reasoner</strong> &middot; <a href="/">query</a> &middot;
<a href="/determinations">determinations</a></header>
{body}
</body></html>
"""


__all__ = ["make_server", "ReasonerHTTPServer", "KB_GRAPH"]
