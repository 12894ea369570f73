"""Loading a case: a Turtle file written to the case model, or a FHIR R4 request (JSON).

Every input error is an `InputError` naming the file and the place (exit code 2).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rdflib import Graph, URIRef
from rdflib.namespace import RDF
from rdflib.plugins.stores.memory import SimpleMemory

from .errors import InputError
from .guard import check_case_file, check_case_graph
from .kb import parse_turtle
from .vocab import CASE_BASE, NR


@dataclass
class Case:
    """One case: its graph, the case node, the index request and where it came from."""

    id: str
    graph: Graph
    node: URIRef
    request: URIRef
    source: str
    kind: str  # "turtle" | "fhir"


CASE_FILES = ("case.ttl", "bundle.json")
FHIR_SUFFIXES = (".json", ".ndjson", ".xml")


def collect_cases(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Case inputs from files and folders: a case file as given; a case folder (holding
    case.ttl or bundle.json) as itself; any other folder searched for case folders.
    Shared by `batch`, `test` and `diff`."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError("file not found", source=str(path))
        if path.is_file():
            out.append(path)
        elif any((path / name).exists() for name in CASE_FILES):
            out.append(path)
        else:
            out.extend(sorted({p.parent for name in CASE_FILES for p in path.rglob(name)}))
    seen, unique = set(), []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def load_case(path: str | Path, kb_graph: Graph | None = None) -> Case:
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=str(path))
    if path.is_dir():
        for name in CASE_FILES:
            if (path / name).exists():
                return load_case(path / name, kb_graph)
        raise InputError("folder holds neither case.ttl nor bundle.json", source=str(path))
    check_case_file(path)  # size limits before reading (reasoner/guard)
    if path.suffix.lower() in FHIR_SUFFIXES:
        return _load_fhir(path, kb_graph)
    graph = read_turtle(path)
    check_case_graph(graph, str(path))
    return case_from_graph(graph, source=str(path), kind="turtle", default_id=_stem(path))


def read_turtle(path: Path) -> Graph:
    """A Turtle case file as an rdflib Graph: read by pyoxigraph's parser (a case is read many
    times faster than by rdflib's), each term made as rdflib's parser makes it: the same graph,
    and the same determination byte for byte (tests/test_case_turtle.py, on every Turtle case of
    the repo), in rdflib's SimpleMemory store. rdflib's own parser reads what pyoxigraph refuses
    (its message, or its reading where it is more lenient) and any file with a language tag
    (pyoxigraph writes tags in lower case; rdflib keeps them as written)."""
    from pyoxigraph import Literal as OxLiteral, RdfFormat, parse

    try:
        parsed = list(parse(path=str(path), format=RdfFormat.TURTLE,
                            base_iri=path.absolute().as_uri()))
    except (SyntaxError, ValueError, OSError, UnicodeError):
        return parse_turtle(path, error=InputError)
    term = _rdflib_terms()
    triples = []
    for t in parsed:
        o = t.object
        if isinstance(o, OxLiteral) and o.language:
            return parse_turtle(path, error=InputError)
        triples.append((term(t.subject), term(t.predicate), term(o)))
    graph = Graph(store=SimpleMemory())  # a case graph needs no contexts: half the cost
    for triple in triples:
        graph.add(triple)
    return graph


_IRIS: dict = {}
_IRIS_MAX = 100_000  # IRIs kept made (codes, classes, predicates repeat from case to case)


def _rdflib_terms():
    """A converter of one file's pyoxigraph terms to rdflib terms."""
    from pyoxigraph import BlankNode, NamedNode
    from rdflib import BNode, Literal

    iris = _IRIS
    if len(iris) > _IRIS_MAX:
        iris.clear()

    def term(ox):
        if isinstance(ox, NamedNode):
            iri = iris.get(ox.value)
            if iri is None:
                iri = iris[ox.value] = URIRef(ox.value)
            return iri
        if isinstance(ox, BlankNode):
            return BNode(ox.value)
        datatype = ox.datatype.value
        if datatype == _XSD_STRING:
            return Literal(ox.value)
        dt = iris.get(datatype)
        if dt is None:
            dt = iris[datatype] = URIRef(datatype)
        return Literal(ox.value, datatype=dt)

    return term


_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def case_from_graph(graph: Graph, source: str, kind: str, default_id: str) -> Case:
    cases = sorted(set(graph.subjects(RDF.type, NR.PriorAuthorizationCase)))
    if not cases:
        raise InputError("no nr:PriorAuthorizationCase in the case graph", source=source)
    if len(cases) > 1:
        raise InputError(f"{len(cases)} nr:PriorAuthorizationCase nodes; one case per file",
                         source=source)
    node = cases[0]
    requests = sorted(set(graph.objects(node, NR.indexRequest)))
    if not requests:
        raise InputError(f"case <{node}> has no request (nr:indexRequest)", source=source)
    if len(requests) > 1:
        raise InputError(f"case <{node}> has {len(requests)} index requests; exactly one allowed",
                         source=source)
    return Case(_case_id(node, default_id), graph, node, requests[0], source, kind)


def _load_fhir(path: Path, kb_graph: Graph | None) -> Case:
    from .intake import fhir
    from .intake.envelope import MAX_BYTES

    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputError(f"file is {size // 1_000_000} MB; over the size limit of "
                         f"{MAX_BYTES // 1_000_000} MB", source=str(path))
    raw = path.read_bytes()
    head = raw.lstrip()[:1]
    if head == b"<":
        raise InputError("FHIR XML is not read; send FHIR R4 JSON", source=str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", source=str(path)) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError("JSON nested too deep (over the nesting limit)",
                         source=str(path)) from None
    except json.JSONDecodeError as exc:
        data = _ndjson(text)
        if data is None:
            raise InputError(f"not JSON: {exc.msg}", source=str(path),
                             place=f"line {exc.lineno} column {exc.colno}") from None
    rdflib_log = logging.getLogger("rdflib")
    level = rdflib_log.level
    rdflib_log.setLevel(logging.ERROR)  # every error is one line: no rdflib warning on stderr
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = fhir.map_bundle(data, str(path), kb=kb_graph)
    finally:
        rdflib_log.setLevel(level)
    check_case_graph(graph, str(path))
    return case_from_graph(graph, source=str(path), kind="fhir", default_id=_stem(path))


def _ndjson(text: str) -> dict | None:
    """FHIR Bulk Data NDJSON (one resource per line) read as a record: a collection Bundle of
    its resources. None when the text is not NDJSON."""
    resources = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return None
        if not isinstance(value, dict) or "resourceType" not in value:
            return None
        resources.append((n, value))
    if len(resources) < 2:
        return None
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} if r.get("id")
                      else {"fullUrl": f"urn:ndjson:line-{n}", "resource": r}
                      for n, r in resources]}


def _stem(path: Path) -> str:
    # cases/<case-id>/case.ttl and cases/<case-id>/bundle.json are named by their folder
    return path.parent.name if path.stem in ("case", "bundle") else path.stem


def _case_id(node: URIRef, default: str) -> str:
    text = str(node)
    if text.startswith(CASE_BASE):
        return text[len(CASE_BASE):].split("/", 1)[0] or default
    return default
