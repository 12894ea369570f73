"""Bounded cost: the size limits a case must keep, checked before the work they bound starts
(issue 12, "Bounded cost"; README, "Exit codes"). A case over a limit is an `InputError` (exit
code 2) naming the limit, so that one hostile file cannot hold a batch or a server for minutes.

The limits are far above any real request: the largest case in the repository is about 30 kB,
a few hundred triples, ten prefixes and no RDF list at all (the case model has no lists).
"""

from __future__ import annotations

import re
from pathlib import Path

from rdflib import BNode, Graph, Literal
from rdflib.namespace import RDF

from ..errors import InputError

#: bytes of one Turtle case file, checked before it is read (FHIR files: the intake's limit)
MAX_CASE_BYTES = 2_000_000
#: @prefix / PREFIX declarations of a Turtle case, counted before it is parsed
MAX_PREFIXES = 200
#: terms (IRIs, prefixed names, literals, keywords) of a Turtle case, counted before it is
#: parsed; bounds the triples a parse can produce (an RDF list item is one term, two triples)
MAX_TERMS = 200_000
#: triples of the case graph after parsing or FHIR mapping, checked before any rule runs
MAX_TRIPLES = 100_000
#: items of one RDF list (rdf:first / rdf:rest chain) in a case graph
MAX_LIST_LENGTH = 1_000
#: characters of a numeric literal (a 5000-digit number is not a clinical value)
MAX_NUMBER_CHARS = 40

LIMITS = {
    "MAX_CASE_BYTES": MAX_CASE_BYTES,
    "MAX_PREFIXES": MAX_PREFIXES,
    "MAX_TERMS": MAX_TERMS,
    "MAX_TRIPLES": MAX_TRIPLES,
    "MAX_LIST_LENGTH": MAX_LIST_LENGTH,
    "MAX_NUMBER_CHARS": MAX_NUMBER_CHARS,
}

_PREFIX = re.compile(rb"(?im)^[ \t]*(@prefix|prefix)\b")
# strings first (long, then short), so that words inside a label are not counted as terms
_STRING = re.compile(rb'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\''
                     rb'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_COMMENT = re.compile(rb"(?m)#[^\n>]*$")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_LONG_NUMBER = re.compile(rb"[0-9.eE+-]{%d,}" % (MAX_NUMBER_CHARS + 1))
_TERM = re.compile(rb"[^\s,;()\[\]]+")
_NUMERIC = ("integer", "decimal", "double", "float", "long", "int", "short",
            "nonNegativeInteger", "positiveInteger", "negativeInteger", "nonPositiveInteger")


def _intake_max_bytes() -> int:
    from ..intake.envelope import MAX_BYTES

    return MAX_BYTES


def check_file(path: Path) -> None:
    """Size of any case file; prefixes and terms of a Turtle one. Reads the file once."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # the loader reports a missing or unreadable file itself
    fhir = path.suffix.lower() in (".json", ".ndjson", ".xml")
    # FHIR files are bounded by the intake's own limits (reasoner/intake/envelope.py: bytes,
    # depth, entries, facts): a whole EHR record is larger than any hand-written Turtle case.
    if size > MAX_CASE_BYTES and not fhir:
        raise InputError(f"case file is {size} bytes; the limit is {MAX_CASE_BYTES} "
                         f"(MAX_CASE_BYTES)", source=str(path))
    if fhir and (path.suffix.lower() == ".xml" or size > _intake_max_bytes()):
        return  # the intake refuses it by name, without a scan here
    try:
        data = path.read_bytes()
    except OSError:
        return
    if fhir:
        digits = _LONG_NUMBER.search(_JSON_STRING.sub(b'""', data))
        if digits:
            raise InputError(f"a number of {len(digits.group(0))} characters or more; the limit "
                             f"is {MAX_NUMBER_CHARS} (MAX_NUMBER_CHARS)", source=str(path))
        return
    prefixes = len(_PREFIX.findall(data))
    if prefixes > MAX_PREFIXES:
        raise InputError(f"{prefixes} prefix declarations; the limit is {MAX_PREFIXES} "
                         f"(MAX_PREFIXES)", source=str(path))
    stripped = _COMMENT.sub(b"", _STRING.sub(b'""', data))
    terms = sum(1 for _ in _TERM.finditer(stripped))
    if terms > MAX_TERMS:
        raise InputError(f"about {terms} terms; the limit is {MAX_TERMS} (MAX_TERMS)",
                         source=str(path))


def check_graph(graph: Graph, source: str) -> None:
    """Triples, RDF list lengths and numeric literal sizes of a parsed or mapped case graph."""
    count = len(graph)
    if count > MAX_TRIPLES:
        raise InputError(f"{count} triples; the limit is {MAX_TRIPLES} (MAX_TRIPLES)",
                         source=source)
    rests = dict(graph.subject_objects(RDF.rest))
    if rests:
        heads = set(graph.subjects(RDF.first)) - set(rests.values())
        for head in sorted(heads, key=str):
            length, node, seen = 0, head, set()
            while node is not None and node != RDF.nil and node not in seen:
                seen.add(node)
                length += 1
                if length > MAX_LIST_LENGTH:
                    raise InputError(f"an RDF list longer than {MAX_LIST_LENGTH} items "
                                     f"(MAX_LIST_LENGTH)", source=source,
                                     place=_where(graph, head))
                node = rests.get(node)
    for s, p, o in graph:
        if (isinstance(o, Literal) and o.datatype is not None
                and str(o.datatype).rsplit("#", 1)[-1] in _NUMERIC
                and len(str(o)) > MAX_NUMBER_CHARS):
            raise InputError(f"a number of {len(str(o))} characters; the limit is "
                             f"{MAX_NUMBER_CHARS} (MAX_NUMBER_CHARS)", source=source,
                             place=f"<{s}> <{p}>")


def _where(graph: Graph, node) -> str:
    """Where a list is: the subject and predicate that hold it, else the list node."""
    for s, p in graph.subject_predicates(node):
        return f"<{s}> <{p}>"
    return f"list {node.n3() if isinstance(node, BNode) else '<' + str(node) + '>'}"
