"""The endpoints a SPARQL store URL names, content negotiation, and which remote endpoints a
query would contact.

- `endpoints`: the query, update and Graph Store Protocol URLs (and credentials) of a store URL
  (SPARQL 1.1 Protocol; the layouts of Oxigraph, Fuseki, GraphDB/RDF4J and Virtuoso:
  docs/store.md).
- `negotiate`: the media type an Accept header prefers (RFC 9110 section 12.5.1).
- `remote_iris` / `refuse_remote`: the endpoints a query's ``SERVICE`` (SPARQL 1.1 Federated
  Query) would call; a query contacts no endpoint the user did not allow (issue 12 point 5).
"""

from __future__ import annotations

import base64
import re
import urllib.parse

from .errors import InputError

def endpoints(url: str) -> tuple[str, str, str, str | None]:
    """(query, update, graph store, Authorization header) for a store URL.

    Layouts recognised when the fragment does not name them:
    - ``.../query`` (Oxigraph, Fuseki ``/ds/query``): update ``.../update``, GSP ``.../store``
      for Oxigraph or ``.../data`` for Fuseki (give ``#gsp=`` for Fuseki; see docs/store.md);
    - ``.../sparql`` (Virtuoso, `reasoner serve`): update the same URL, GSP ``.../sparql-graph-crud``;
    - ``.../repositories/<id>`` (GraphDB, RDF4J): update ``.../statements``, GSP
      ``.../rdf-graphs/service``;
    - a bare server URL (Oxigraph ``http://host:7878``): ``/query``, ``/update``, ``/store``.
    """
    parts = urllib.parse.urlsplit(url)
    options = dict(urllib.parse.parse_qsl(parts.fragment))
    auth = None
    netloc = parts.netloc
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        netloc = netloc.rsplit("@", 1)[1]
    if options.get("token"):
        auth = "Bearer " + options["token"]
    base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    path = parts.path.rstrip("/")
    root = urllib.parse.urlunsplit((parts.scheme, netloc, "", "", ""))
    if path.endswith("/query"):
        stem = root + path[: -len("/query")]
        query, update, gsp = base, stem + "/update", stem + "/store"
    elif path.endswith("/sparql"):
        stem = root + path[: -len("/sparql")]
        query, update, gsp = base, base, stem + "/sparql-graph-crud"
    elif "/repositories/" in path:
        query, update, gsp = base, root + path + "/statements", root + path + "/rdf-graphs/service"
    elif path == "":
        query, update, gsp = root + "/query", root + "/update", root + "/store"
    else:
        query, update, gsp = base, base, base
    return (options.get("query", query), options.get("update", update),
            options.get("gsp", gsp), auth)


def negotiate(accept: str | None, offered: list[str]) -> str:
    """The offered media type the Accept header prefers (by q, then header order; `*/*` and
    `type/*` take the first offered match)."""
    if not accept:
        return offered[0]
    entries = []
    for i, item in enumerate(accept.split(",")):
        fields = [f.strip() for f in item.split(";")]
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        entries.append((-q, i, fields[0].lower()))
    for neg_q, _, media in sorted(entries):
        if neg_q == 0:
            continue
        for o in offered:
            if media == o or media == "*/*" or (media.endswith("/*") and o.startswith(media[:-1])):
                return o
    return offered[0]


def with_param(url: str, key: str, value: str) -> str:
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{sep}{key}={urllib.parse.quote(value, safe='')}"


# A SPARQL query's tokens that hide the word SERVICE: comments, strings, IRIs.
_SKIP = re.compile(r"""
    '{3}.*?'{3} | "{3}.*?"{3}            # long strings
  | '(?:[^'\\\n]|\\.)*' | "(?:[^"\\\n]|\\.)*"   # strings
  | <[^<>"{}|^`\\\s]*>                  # IRIs
  | \#[^\n]*                             # comments
""", re.VERBOSE | re.DOTALL)
_SERVICE = re.compile(r"\bSERVICE\b(?:\s+SILENT\b)?\s*(?P<target><[^>]*>|[?$]\w+|\S*)",
                      re.IGNORECASE)


def remote_iris(query: str) -> list[str]:
    """The endpoints a query's SERVICE clauses name, in order (a variable endpoint as
    ``?var``). Comments, strings and IRIs are skipped, so `SERVICE` in a literal is no call."""
    found, pos = [], 0
    masked = []
    for m in _SKIP.finditer(query):
        masked.append(query[pos:m.start()])
        token = m.group(0)
        masked.append(token if token.startswith("<") else " " * len(token))
        pos = m.end()
    masked.append(query[pos:])
    for m in _SERVICE.finditer("".join(masked)):
        target = m.group("target")
        found.append(target[1:-1] if target.startswith("<") else target)
    return found


def refuse_remote(query: str, allowed: tuple[str, ...] | list[str] = (),
                  source: str = "query") -> list[str]:
    """The query's SERVICE endpoints, all of them in `allowed`; otherwise an InputError naming
    the first that is not (a variable endpoint is never allowed): a query makes no request to
    an endpoint the user did not name."""
    iris = remote_iris(query)
    for iri in iris:
        if iri not in allowed:
            raise InputError(f"SERVICE {iri if iri.startswith(('?', '$')) else f'<{iri}>'} "
                             "refused: a query contacts no other endpoint unless "
                             "--allow-service names it", source=source)
    return iris
