"""What a query sent to `reasoner serve` may reach: only this store.

A SPARQL 1.1 Federated Query ``SERVICE <url>`` makes the engine send a request to `url`
(https://www.w3.org/TR/sparql11-federated-query/), and ``LOAD <url>`` in an update fetches `url`
(SPARQL 1.1 Update §3.2.2): from a server both are server-side request forgery (SSRF). ``FROM`` /
``FROM NAMED`` / ``USING`` name the query's dataset (SPARQL 1.1 Query §13.2); pyoxigraph reads them
from the store and never fetches them, but an IRI that is not a graph here is refused all the
same, so that the server never relies on the engine's choice. These are allowed only for the
endpoints the operator names (`--allow-service URL`).

First a token scan looks for the keywords SERVICE, LOAD, FROM and USING outside strings, IRIs
and comments (most queries, and the records sent as updates, have none: done). When it finds one,
the query is parsed with rdflib's SPARQL 1.1 grammar and its parse tree decides (so ``FROM`` of a
stored graph passes); a query rdflib cannot parse (e.g. SPARQL-star, which pyoxigraph accepts) is
refused on the scan's finding.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable


class QueryRefused(Exception):
    """The query reaches beyond this store; its message is one line for the client."""


def check_query(text: str, allow: Iterable[str] = (),
                graph_exists: Callable[[str], bool] = lambda iri: False) -> None:
    """Raise `QueryRefused` when `text` (a query or an update) would contact another server or
    name a dataset graph that is not in the store, unless the IRI is in `allow`."""
    allowed = {a.rstrip("/") for a in allow}
    try:
        _scan(text, allowed)
        return  # none of the keywords: nothing to parse (records sent as updates stay fast)
    except QueryRefused as scanned:
        try:
            tree = _parse(text)
        except Exception:  # noqa: BLE001 - rdflib's grammar is narrower than pyoxigraph's
            raise scanned from None
    for name, node in _walk(tree):
        if name == "ServiceGraphPattern":
            _allowed_iri(node.get("term"), allowed, "SERVICE")
        elif name == "Load":
            _allowed_iri(node.get("iri"), allowed, "LOAD")
        elif name in ("DatasetClause", "UsingClause"):
            iri = node.get("default") if node.get("default") is not None else node.get("named")
            keyword = "FROM" if name == "DatasetClause" else "USING"
            if not (_is_iri(iri) and (str(iri).rstrip("/") in allowed or graph_exists(str(iri)))):
                raise QueryRefused(f"{keyword} {_show(iri)} is not a graph in this store and "
                                   "remote graphs are not fetched")


def _parse(text: str):
    from rdflib.plugins.sparql.parser import parseQuery, parseUpdate

    try:
        return parseQuery(text)
    except Exception:  # noqa: BLE001
        return parseUpdate(text)


def _walk(node) -> Iterable[tuple[str, dict]]:
    from rdflib.plugins.sparql.parserutils import CompValue

    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, CompValue):
            yield n.name, n
            stack.extend(n.values())
        elif isinstance(n, (list, tuple)) or type(n).__name__ == "ParseResults":
            stack.extend(n)


def _is_iri(term) -> bool:
    return type(term).__name__ == "URIRef"


def _show(term) -> str:
    return f"<{term}>" if _is_iri(term) else "(not an IRI)"


def _allowed_iri(term, allowed: set[str], keyword: str) -> None:
    if _is_iri(term) and str(term).rstrip("/") in allowed:
        return
    raise QueryRefused(f"{keyword} {_show(term)} is refused: this server contacts no other "
                       "endpoint unless its operator allows it (--allow-service)")


_TOKENS = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"'
                     r"|'(?:[^'\\\n]|\\.)*'|<[^<>\s]*>|#[^\n]*|[A-Za-z_][\w-]*:?[\w.-]*")


def _scan(text: str, allowed: set[str]) -> None:
    """Token-level fallback: keywords are case-insensitive bare words (not prefixed names)."""
    tokens = _TOKENS.findall(text)
    for i, token in enumerate(tokens):
        word = token.upper()
        if word in ("SERVICE", "LOAD", "FROM", "USING"):
            rest = [t for t in tokens[i + 1:i + 4] if t.upper() not in ("SILENT", "NAMED")]
            iri = rest[0][1:-1] if rest and rest[0].startswith("<") else None
            if iri is None or iri.rstrip("/") not in allowed:
                raise QueryRefused(f"{word} {'<' + iri + '>' if iri else ''} is refused: this "
                                   "server reaches no other endpoint or graph unless its "
                                   "operator allows it (--allow-service)".replace("  ", " "))
