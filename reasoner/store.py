"""The decision store: the one adapter for where decision records live.

A decision record (`Reasoner.record_graph`) is kept as **one named graph whose name is the
determination IRI** (`.../determination/<case-id>/<policy-id>/<version>`). That IRI is stable per
case + policy + version, so deciding again *replaces* the graph instead of adding a second one.

Two back ends behind one interface (`open_store(location)`):

- `EmbeddedStore`: an on-disk pyoxigraph `Store` (RocksDB; SPARQL in native code, no server). A
  record is written by one SPARQL update, ``DROP SILENT GRAPH <d> ; INSERT DATA { GRAPH <d> {...} }``,
  which pyoxigraph applies in one transaction: a crash or Ctrl-C leaves the previous state or the
  new record, never a part of it.
- `RemoteStore`: any SPARQL 1.1 endpoint given as an ``http(s)://`` URL: the SPARQL 1.1 Protocol
  for query and update, the Graph Store Protocol (GSP) for records (one ``PUT ?graph=<d>`` per
  record: the server replaces the graph in one request). Only the URLs the user gives are
  contacted. See docs/store.md for the URL layouts of Oxigraph, Fuseki, GraphDB and Virtuoso.

Queries run over the records **and** the knowledge graph: the ontology, knowledge and policy-pack
files are loaded once into the named graph `KB_GRAPH`, keyed by the sha256 of their contents
(re-loaded only when a file changes), and queries see the union of all graphs as their default
graph (`use_default_graph_as_union` here; the server's union-default-graph setting remotely).

Every record is written together with its **summary** (reasoner/summary.py) in the named graph
`SUMMARY_GRAPH`, in the same transaction (one SPARQL update; remotely too, since the Graph Store
Protocol replaces one graph per request). The analysts' queries read the summary; `ensure_kb`
(run before queries by `reasoner query --store` and `reasoner serve`) also adds the summary of
any record stored without one, and `update` keeps it in step with what an update changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .endpoints import endpoints, negotiate, with_param
from .errors import InputError, KnowledgeError, redact
from .summary import after_update, ensure_summaries, replace_record_update, summary_ntriples
from .vocab import NR, PREFIXES

KB_GRAPH = "https://w3id.org/necessity/kb"
"""Named graph holding ontology + knowledge + policy packs inside a store."""

RECORDS_QUERY = (
    "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?g a <%sDetermination> } } ORDER BY ?g" % NR
)

# Media types (SPARQL 1.1 Protocol / Query Results formats)
JSON_RESULTS = "application/sparql-results+json"
XML_RESULTS = "application/sparql-results+xml"
CSV_RESULTS = "text/csv"
TSV_RESULTS = "text/tab-separated-values"


def open_store(location: str | os.PathLike, *, create: bool = True) -> "DecisionStore":
    """A store for `location`: an ``http(s)://`` URL (a SPARQL endpoint) or a folder path."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        return RemoteStore(text)
    return EmbeddedStore(text, create=create)


_IRI_FORBIDDEN = set(' <>"{}|\\^`') | {chr(i) for i in range(0x21)}


def safe_iri(iri: str) -> str:
    """`iri` with the characters an IRI may not hold (space, <, >, ", {, }, |, \\, ^, `)
    percent-encoded, so that a determination IRI built from a version label such as
    "2025 (example superseded, invented)" is still a valid graph name."""
    if not any(c in _IRI_FORBIDDEN for c in iri):
        return iri
    return "".join(f"%{ord(c):02X}" if c in _IRI_FORBIDDEN else c for c in iri)


def record_ntriples(graph) -> str:
    """A record graph as N-Triples, with every IRI made valid (`safe_iri`)."""
    from rdflib import Graph, URIRef

    bad = {t for triple in graph for t in triple
           if isinstance(t, URIRef) and any(c in _IRI_FORBIDDEN for c in t)}
    if bad:
        fixed = Graph()
        fix = {t: URIRef(safe_iri(str(t))) for t in bad}
        for s, p, o in graph:
            fixed.add((fix.get(s, s), fix.get(p, p), fix.get(o, o)))
        graph = fixed
    return graph.serialize(format="nt")


def prefix_lines(query: str) -> str:
    """PREFIX declarations for the project prefixes a query uses but does not declare."""
    lowered = query.lower()
    lines = []
    for prefix, ns in PREFIXES.items():
        if f"{prefix}:" in query and f"prefix {prefix}:" not in lowered:
            lines.append(f"PREFIX {prefix}: <{ns}>")
    return "\n".join(lines) + ("\n" if lines else "")


def kb_files(root: Path | None = None) -> list[Path]:
    """The files the knowledge graph is built from (as `reasoner.kb.KnowledgeBase` reads them)."""
    from .kb import project_root

    root = Path(root) if root else project_root()
    files = sorted((root / "ontology").glob("*.ttl"))
    files += sorted((root / "knowledge").rglob("*.ttl"))
    shapes = root / "shapes"
    if shapes.exists():
        for folder in sorted(p for p in shapes.iterdir() if p.is_dir()):
            files += sorted(folder.glob("*.ttl"))
    return files


def kb_hash(files: list[Path]) -> str:
    """sha256 over (path, content) of every knowledge file: the key of the stored KB graph."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()


def kb_ntriples(files: list[Path]) -> str:
    """Every knowledge file as N-Triples (pyoxigraph's parser; rdflib's where it is stricter)."""
    import pyoxigraph as ox

    out = io.BytesIO()
    for path in files:
        try:
            triples = list(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
            ox.serialize(triples, out, format=ox.RdfFormat.N_TRIPLES)
        except (SyntaxError, ValueError, OSError):
            from rdflib import Graph

            try:
                out.write(Graph().parse(path, format="turtle").serialize(format="nt").encode())
            except Exception as exc:
                raise KnowledgeError(f"does not load: {exc}", source=str(path)) from None
    return out.getvalue().decode("utf-8")


def _to_rdflib_result(kind: str, payload: bytes, media_type: str = JSON_RESULTS):
    """SPARQL results (JSON, or RDF for CONSTRUCT/DESCRIBE) as an rdflib `Result`, so the
    renderers of `reasoner.render.results` print them like any other query."""
    from rdflib import Graph
    from rdflib.query import Result

    if kind == "graph":
        fmt = "nt" if "n-triples" in media_type or media_type == "text/plain" else "turtle"
        result = Result("CONSTRUCT")
        result.graph = Graph().parse(data=payload.decode("utf-8"), format=fmt)
        return result
    return Result.parse(io.BytesIO(payload), format="json")


class DecisionStore:
    """Where decision records live. Subclasses implement the primitives."""

    location: str

    # -- primitives -----------------------------------------------------------------
    def put_ntriples(self, graph_iri: str, ntriples: str, summary: str | None = None) -> None:
        """Replace named graph `graph_iri` by these triples, atomically; with `summary`
        (N-Triples), replace the record's summary in `SUMMARY_GRAPH` in the same transaction."""
        raise NotImplementedError

    def raw_update(self, sparql: str) -> None:
        """A SPARQL update of the store's own (no summary upkeep after it)."""
        raise NotImplementedError

    def select_json(self, sparql: str, source: str = "query") -> tuple[str, bytes, str]:
        """Run a query; (kind 'solutions'|'boolean'|'graph', payload bytes, media type)."""
        raise NotImplementedError

    def update(self, sparql: str, source: str = "update") -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def flush(self) -> None:
        """Make every write durable (a no-op where each request already is)."""

    def _kb_marker(self) -> str | None:
        rows = self.select_rows(
            f"SELECT ?h WHERE {{ GRAPH <{KB_GRAPH}> {{ <{KB_GRAPH}> <{NR.contentHash}> ?h }} }}")
        return rows[0]["h"] if rows else None

    # -- operations -----------------------------------------------------------------
    def put(self, graph_iri: str, record) -> None:
        """Store a record (an rdflib Graph or N-Triples text) as the named graph `graph_iri`."""
        text = record if isinstance(record, str) else record_ntriples(record)
        iri = safe_iri(graph_iri)
        self._write(iri, text, summary_ntriples(iri, text))

    def _write(self, graph_iri: str, ntriples: str, summary: str | None = None) -> None:
        """`put_ntriples`, with a store that cannot write (a full disk: ENOSPC, a read-only
        folder) reported as one line, exit 2; the write is one transaction, so nothing of the
        record is stored."""
        try:
            self.put_ntriples(graph_iri, ntriples, summary)
        except OSError as exc:
            raise InputError(f"cannot write to the store: {exc.strerror or _one_line(exc)}",
                             source=_short(self.location)) from None

    def records(self) -> list[str]:
        """The determination IRIs of every stored record."""
        return [row["g"] for row in self.select_rows(RECORDS_QUERY)]

    def record(self, graph_iri: str):
        """One record as an rdflib Graph (empty if absent)."""
        result = self.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}")
        return result.graph

    def record_ntriples(self, graph_iri: str) -> str:
        """One record as N-Triples text (empty if absent)."""
        kind, payload, media = self.select_json(
            f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}")
        if "n-triples" in media or media == "text/plain":
            return payload.decode("utf-8")
        return _to_rdflib_result(kind, payload, media).graph.serialize(format="nt")

    def ensure_summaries(self, rederive: set[str] | None = None, everything: bool = False) -> int:
        """Add the summary of every record stored without one (reasoner/summary.py)."""
        return ensure_summaries(self, rederive, everything)

    def query(self, sparql: str, source: str = "query"):
        """Run SPARQL over the records and the knowledge graph; an rdflib `Result`."""
        kind, payload, media = self.select_json(sparql, source)
        return _to_rdflib_result(kind, payload, media)

    def select_rows(self, sparql: str, source: str = "query") -> list[dict[str, str]]:
        """SELECT solutions as dicts of plain strings (lexical forms / IRIs), for tests and tools."""
        kind, payload, _ = self.select_json(sparql, source)
        if kind != "solutions":
            raise InputError("not a SELECT query", source=source)
        data = json.loads(payload)
        return [{k: v["value"] for k, v in b.items()} for b in data["results"]["bindings"]]

    def ensure_kb(self, root: Path | None = None) -> bool:
        """Load the knowledge graph into `KB_GRAPH` unless the same content is already there,
        and add the summary of any record stored without one (`ensure_summaries`): what a
        store needs before the analysts' queries run. Returns True when the KB (re)loaded."""
        files = kb_files(root)
        digest = kb_hash(files)
        self.ensure_summaries()
        if self._kb_marker() == digest:
            return False
        nt = kb_ntriples(files)
        nt += f"<{KB_GRAPH}> <{NR.contentHash}> \"{digest}\" .\n"
        self._write(KB_GRAPH, nt)
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EmbeddedStore(DecisionStore):
    """An on-disk pyoxigraph Store in the folder `path`.

    The folder must be a store already (`is_store_folder`) or, with `create`, absent or empty:
    an existing folder holding other files (``--store docs``) is refused before anything is
    written into it (docs/store.md, "The store folder")."""

    def __init__(self, path: str, create: bool = True):
        import pyoxigraph as ox

        self.location = str(path)
        self.store = None
        target = Path(path)
        try:
            exists = target.exists()
            if exists and not target.is_dir():
                raise InputError("not a store folder (a file is in the way)", source=self.location)
            if exists and not is_store_folder(target):
                if any(target.iterdir()):
                    raise InputError(
                        "not a decision store: the folder exists and holds other files; give a "
                        "store folder, an empty folder or a new path", source=self.location)
                if not create:
                    raise InputError("no store here (an empty folder)", source=self.location)
            if not exists and not create:
                raise InputError("no store here", source=self.location)
        except OSError as exc:  # e.g. ENAMETOOLONG, EACCES: the path itself is unusable
            raise InputError(f"unusable store path: {exc.strerror or exc}",
                             source=_short(self.location)) from None
        try:
            self.store = ox.Store(self.location)
        except OSError as exc:
            text = " ".join(str(exc).split())
            if "lock" in text.lower():
                text = ("the store is open in another process (e.g. `reasoner serve`): "
                        "stop it, or give the server's URL instead of the folder")
            elif "too long" in text.lower():
                text = "unusable store path: File name too long"
            raise InputError(text[:300], source=_short(self.location)) from None

    def put_ntriples(self, graph_iri: str, ntriples: str, summary: str | None = None) -> None:
        # One update = one transaction (pyoxigraph): the old graph (and its summary) goes and
        # the new one comes together or not at all.
        self.store.update(replace_record_update(graph_iri, ntriples, summary))

    def put_many(self, records: list[tuple[str, str]]) -> None:
        """Several records (with their summaries) in one transaction (each whole, or none)."""
        parts = [replace_record_update(iri, nt, summary_ntriples(iri, nt)) for iri, nt in records]
        if parts:
            self.store.update(" ;\n".join(parts))

    def raw_update(self, sparql: str) -> None:
        self.store.update(sparql)

    def _query(self, sparql: str, source: str):
        text = sparql
        try:
            return self.store.query(text, prefixes={k: str(v) for k, v in PREFIXES.items()},
                                    use_default_graph_as_union=True)
        except SyntaxError as exc:
            raise InputError(f"bad SPARQL: {_one_line(exc)}", source=source) from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise InputError(f"query failed: {_one_line(exc)}", source=source) from None

    def select_json(self, sparql: str, source: str = "query") -> tuple[str, bytes, str]:
        import pyoxigraph as ox

        result = self._query(sparql, source)
        if isinstance(result, ox.QueryTriples):
            return "graph", result.serialize(format=ox.RdfFormat.N_TRIPLES), "application/n-triples"
        kind = "boolean" if isinstance(result, ox.QueryBoolean) else "solutions"
        return kind, result.serialize(format=ox.QueryResultsFormat.JSON), JSON_RESULTS

    def serialize_query(self, sparql: str, accept: str | None,
                        source: str = "query") -> tuple[bytes, str]:
        """Run a query and serialise its result in the best format `accept` allows
        (SPARQL results JSON/XML/CSV/TSV; Turtle/N-Triples/RDF/XML/JSON-LD for graphs)."""
        import pyoxigraph as ox

        result = self._query(sparql, source)
        if isinstance(result, ox.QueryTriples):
            media = negotiate(accept, ["text/turtle", "application/n-triples",
                                       "application/rdf+xml", "application/ld+json"])
            return result.serialize(format=ox.RdfFormat.from_media_type(media)), media
        media = negotiate(accept, [JSON_RESULTS, XML_RESULTS, CSV_RESULTS, TSV_RESULTS,
                                   "application/json"])
        fmt = ox.QueryResultsFormat.from_media_type(
            JSON_RESULTS if media == "application/json" else media)
        if isinstance(result, ox.QueryBoolean) and media in (CSV_RESULTS, TSV_RESULTS):
            media, fmt = JSON_RESULTS, ox.QueryResultsFormat.JSON
        return result.serialize(format=fmt), media

    def update(self, sparql: str, source: str = "update") -> None:
        """A SPARQL update; the summary follows what it changed (`after_update`)."""
        try:
            self.store.update(sparql, prefixes={k: str(v) for k, v in PREFIXES.items()})
        except SyntaxError as exc:
            raise InputError(f"bad SPARQL update: {_one_line(exc)}", source=source) from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise InputError(f"update failed: {_one_line(exc)}", source=source) from None
        after_update(self, sparql)

    def records(self) -> list[str]:
        import pyoxigraph as ox

        det = ox.NamedNode(str(NR.Determination))
        rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
        out = []
        for g in self.store.named_graphs():
            if isinstance(g, ox.NamedNode) and g.value != KB_GRAPH:
                if next(iter(self.store.quads_for_pattern(g, rdf_type, det, g)), None) is not None:
                    out.append(g.value)
        return sorted(out)

    def flush(self) -> None:
        if self.store is not None:
            self.store.flush()

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            try:
                store.flush()
            except OSError:
                pass
            self.store = None
            del store


class RemoteStore(DecisionStore):
    """A SPARQL 1.1 endpoint. `url` is the query endpoint; the update and Graph Store Protocol
    endpoints follow the server's usual layout (see `endpoints`) or are given in the URL's
    fragment: ``http://h/ds/query#update=http://h/ds/update&gsp=http://h/ds/data``. User and
    password in the URL (``http://user:pw@h/...``) are sent as HTTP Basic authentication;
    ``#token=T`` as a Bearer token (e.g. for `reasoner serve --write-token`)."""

    def __init__(self, url: str, timeout: float = 120.0):
        self.location = redact(url)  # what messages show: no password, no token
        self.timeout = timeout
        self.query_url, self.update_url, self.gsp_url, self.auth = endpoints(url)

    # -- HTTP -----------------------------------------------------------------------
    def _request(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
                 source: str) -> tuple[bytes, str]:
        headers = dict(headers)
        if self.auth:
            headers["Authorization"] = self.auth
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise InputError(f"HTTP {exc.code} from {method} {url}: {_one_line(detail)[:200]}",
                             source=source) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(f"cannot reach {url}: {reason}", source=source) from None

    def put_ntriples(self, graph_iri: str, ntriples: str, summary: str | None = None) -> None:
        if summary is not None:
            # A record and its summary are two graphs: one SPARQL update (one transaction on
            # SPARQL 1.1 servers) replaces both; a Graph Store PUT replaces one graph only.
            self.raw_update(replace_record_update(graph_iri, ntriples, summary))
            return
        # Graph Store Protocol, one PUT: the server replaces the graph in one request.
        # N-Triples is a subset of Turtle; every GSP server accepts text/turtle.
        if self.gsp_url:
            url = with_param(self.gsp_url, "graph", graph_iri)
            try:
                self._request("PUT", url, ntriples.encode("utf-8"),
                              {"Content-Type": "text/turtle; charset=utf-8"}, source=self.location)
                return
            except InputError as exc:
                if not any(f"HTTP {code} " in str(exc) for code in (404, 405, 501)):
                    raise
                self.gsp_url = None  # no Graph Store here: one SPARQL update per record instead
        # One update request = one transaction on SPARQL 1.1 servers (drop and insert together).
        self.update(f"DROP SILENT GRAPH <{graph_iri}> ;\n"
                    f"INSERT DATA {{ GRAPH <{graph_iri}> {{\n{ntriples}\n}} }}", source=self.location)

    def select_json(self, sparql: str, source: str = "query") -> tuple[str, bytes, str]:
        text = prefix_lines(sparql) + sparql
        payload, ctype = self._request(
            "POST", self.query_url, text.encode("utf-8"),
            {"Content-Type": "application/sparql-query; charset=utf-8",
             "Accept": f"{JSON_RESULTS}, application/n-triples;q=0.9, text/turtle;q=0.8"},
            source=source)
        media = ctype.split(";")[0].strip().lower()
        if media in (JSON_RESULTS, "application/json"):
            data = json.loads(payload)
            return ("boolean" if "boolean" in data else "solutions"), payload, JSON_RESULTS
        return "graph", payload, media

    def update(self, sparql: str, source: str = "update") -> None:
        """A SPARQL update; the summary follows what it changed (`after_update`)."""
        self.raw_update(sparql, source)
        after_update(self, sparql)

    def raw_update(self, sparql: str, source: str = "update") -> None:
        text = prefix_lines(sparql) + sparql
        self._request("POST", self.update_url, text.encode("utf-8"),
                      {"Content-Type": "application/sparql-update; charset=utf-8"}, source=source)


def is_store_folder(folder: Path) -> bool:
    """Whether `folder` holds a pyoxigraph store: RocksDB's ``CURRENT`` file and a
    ``MANIFEST-*`` next to it (the files every RocksDB database has)."""
    return (folder / "CURRENT").is_file() and any(folder.glob("MANIFEST-*"))


def _short(path: str, keep: int = 120) -> str:
    """A path for a one-line message: an over-long one shortened in the middle."""
    return path if len(path) <= keep else f"{path[:keep // 2]}...{path[-keep // 2:]}"


def _one_line(exc) -> str:
    return " ".join(str(exc).split())[:300]
