"""The query worker of `reasoner serve`: one process that runs SPARQL queries on a read-only
snapshot of the store and streams the serialised results back through a pipe.

Why a process: pyoxigraph evaluates a query in native code that Python cannot interrupt, and some
queries (``ORDER BY`` or ``COUNT`` over a cartesian product) compute for minutes and build their
whole result in memory before the first row. A process can be killed when its query runs past the
time limit, past the memory limit, or when its client leaves (`reasoner.server.queries`). The
snapshot (`pyoxigraph.Store.backup`, hard links where possible) is what pyoxigraph allows a second
process to open (`Store.read_only`) while the server holds the store.

Protocol (parent -> worker): a job dict ``{path, query, accept, max_rows, max_bytes, allow}``.
Worker -> parent, in order: ``("head", media)``, then ``("data", bytes)``..., then ``("end",)``;
or at any point ``("error", status, message)`` (the parent answers or cuts the response).

Results are serialised here, batch by batch, rather than by pyoxigraph's one-shot serialiser,
so that the row limit is checked per row and memory stays bounded (SPARQL 1.1 Query Results
JSON, XML, CSV and TSV formats; N-Triples / Turtle for CONSTRUCT and DESCRIBE).
"""

from __future__ import annotations

import json
import os
import resource
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from .sparqlcheck import QueryRefused, check_query

CHUNK_ROWS = 1000
CHUNK_BYTES = 256 * 1024

JSON_RESULTS = "application/sparql-results+json"
XML_RESULTS = "application/sparql-results+xml"
CSV_RESULTS = "text/csv"
TSV_RESULTS = "text/tab-separated-values"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


class LimitExceeded(Exception):
    pass


def main(conn, memory: int | None, prefixes: dict[str, str]) -> None:
    """Worker loop (the target of the worker process)."""
    if memory:
        # Backstop for the parent's RSS watch: beyond this address space an allocation fails
        # and the process aborts; the parent answers 503 and starts another worker.
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import pyoxigraph as ox

    store, opened = None, None
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if job["path"] != opened:
                store = None
                store = ox.Store.read_only(job["path"])
                opened = job["path"]
            check_query(job["query"], job["allow"],
                        lambda iri: store.contains_named_graph(ox.NamedNode(iri)))
            _run(conn, store, job, prefixes)
        except QueryRefused as exc:
            conn.send(("error", 400, str(exc)))
        except LimitExceeded as exc:
            conn.send(("error", 400, str(exc)))
        except SyntaxError as exc:
            conn.send(("error", 400, f"bad SPARQL: {_one_line(exc)}"))
        except (OSError, ValueError, RuntimeError) as exc:
            conn.send(("error", 400, f"query failed: {_one_line(exc)}"))


def _run(conn, store, job, prefixes) -> None:
    import pyoxigraph as ox

    from ..store import negotiate

    result = store.query(job["query"], prefixes=prefixes, use_default_graph_as_union=True)
    accept = job["accept"]
    out = _Out(conn, job["max_bytes"])
    if isinstance(result, ox.QueryBoolean):
        media = negotiate(accept, [JSON_RESULTS, XML_RESULTS, "application/json"])
        media = JSON_RESULTS if media == "application/json" else media
        if media == XML_RESULTS:
            body = ('<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                    f"<head/><boolean>{'true' if bool(result) else 'false'}</boolean></sparql>\n")
        else:
            body = json.dumps({"head": {}, "boolean": bool(result)}) + "\n"
        out.head(media)
        out.write(body.encode())
        return out.end()
    if isinstance(result, ox.QueryTriples):
        media = negotiate(accept, ["text/turtle", "application/n-triples",
                                   "application/rdf+xml", "application/ld+json"])
        return _triples(out, result, media, job["max_rows"])
    media = negotiate(accept, [JSON_RESULTS, XML_RESULTS, CSV_RESULTS, TSV_RESULTS,
                               "application/json"])
    media = JSON_RESULTS if media == "application/json" else media
    return _solutions(out, result, media, job["max_rows"])


class _Out:
    """Buffers output and sends it in chunks; the head goes with the first chunk, so a query
    that fails early or exceeds a limit within its first chunk gets a clean error status."""

    def __init__(self, conn, max_bytes: int):
        self.conn, self.max_bytes = conn, max_bytes
        self.media, self.buffer, self.sent, self.total = None, [], False, 0

    def head(self, media):
        self.media = media

    def write(self, data: bytes):
        self.total += len(data)
        if self.total > self.max_bytes:
            raise LimitExceeded(f"the result is larger than {self.max_bytes} bytes (the server's "
                                "result-size limit): add LIMIT or select fewer values")
        self.buffer.append(data)

    def flush(self):
        if not self.sent:
            self.conn.send(("head", self.media))
            self.sent = True
        if self.buffer:
            self.conn.send(("data", b"".join(self.buffer)))
            self.buffer = []

    def end(self):
        self.flush()
        self.conn.send(("end",))


def _too_many(max_rows: int) -> LimitExceeded:
    return LimitExceeded(f"the result has more than {max_rows} rows (the server's row limit): "
                         "add LIMIT")


def _solutions(out, result, media, max_rows) -> None:
    names = [v.value for v in result.variables]
    out.head(media)
    if media == JSON_RESULTS:
        out.write(('{"head": {"vars": %s}, "results": {"bindings": [' % json.dumps(names)).encode())
    elif media == XML_RESULTS:
        head = "".join(f"<variable name={quoteattr(n)}/>" for n in names)
        out.write(('<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                   f"<head>{head}</head><results>\n").encode())
    elif media == CSV_RESULTS:
        out.write((",".join(names) + "\r\n").encode())
    else:
        out.write(("\t".join("?" + n for n in names) + "\n").encode())
    rows = 0
    for solution in result:
        rows += 1
        if rows > max_rows:
            raise _too_many(max_rows)
        values = [solution[n] for n in names]
        if media == JSON_RESULTS:
            row = {n: _json_term(v) for n, v in zip(names, values) if v is not None}
            out.write(((",\n" if rows > 1 else "\n") + json.dumps(row)).encode())
        elif media == XML_RESULTS:
            cells = "".join(f"<binding name={quoteattr(n)}>{_xml_term(v)}</binding>"
                            for n, v in zip(names, values) if v is not None)
            out.write(f"<result>{cells}</result>\n".encode())
        elif media == CSV_RESULTS:
            out.write((",".join(_csv_term(v) for v in values) + "\r\n").encode())
        else:
            out.write(("\t".join("" if v is None else str(v) for v in values) + "\n").encode())
        if rows % CHUNK_ROWS == 0 or sum(map(len, out.buffer)) > CHUNK_BYTES:
            out.flush()
    if media == JSON_RESULTS:
        out.write(b"\n]}}\n")
    elif media == XML_RESULTS:
        out.write(b"</results></sparql>\n")
    out.end()


def _triples(out, result, media, max_rows) -> None:
    import pyoxigraph as ox

    fmt = ox.RdfFormat.from_media_type(media)
    batch, rows = [], 0
    streamable = media in ("text/turtle", "application/n-triples")
    out.head(media)
    for triple in result:
        rows += 1
        if rows > max_rows:
            raise _too_many(max_rows)
        batch.append(triple)
        if streamable and len(batch) >= CHUNK_ROWS:
            # N-Triples lines and prefix-less Turtle documents concatenate into one document
            out.write(ox.serialize(batch, format=fmt))
            out.flush()
            batch = []
    out.write(ox.serialize(batch, format=fmt) if batch or not streamable else b"")
    out.end()


def _json_term(term) -> dict:
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": {"subject": _json_term(term.subject),
                                        "predicate": _json_term(term.predicate),
                                        "object": _json_term(term.object)}}


def _xml_term(term) -> str:
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return f"<uri>{xml_escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{xml_escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return (f"<literal xml:lang={quoteattr(term.language)}>"
                    f"{xml_escape(term.value)}</literal>")
        if term.datatype.value != XSD_STRING:
            return (f"<literal datatype={quoteattr(term.datatype.value)}>"
                    f"{xml_escape(term.value)}</literal>")
        return f"<literal>{xml_escape(term.value)}</literal>"
    return (f"<triple><subject>{_xml_term(term.subject)}</subject><predicate>"
            f"{_xml_term(term.predicate)}</predicate><object>{_xml_term(term.object)}</object>"
            "</triple>")


def _csv_term(term) -> str:
    """SPARQL 1.1 CSV: plain values; quoted when they hold a comma, quote or line break."""
    if term is None:
        return ""
    value = term.value if hasattr(term, "value") else str(term)
    if type(term).__name__ == "BlankNode":
        value = "_:" + value
    if any(c in value for c in ',"\r\n'):
        value = '"' + value.replace('"', '""') + '"'
    return value


def _one_line(exc) -> str:
    return " ".join(str(exc).split())[:300]


def rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` (Linux /proc), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
