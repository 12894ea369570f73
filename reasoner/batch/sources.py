"""Where a batch reads its cases, lazily (one case at a time, never the whole input in memory).

* case files and folders, as `reasoner.case.collect_cases` finds them;
* a glob pattern (`'cases/*-l5*'`, `'incoming/**/bundle.json'`; quoted, so that we expand it:
  the shell's expansion can exceed the command-line limit), matches in name order;
* `-`: standard input as NDJSON, one FHIR R4 Bundle (or CDS Hooks / PAS request) per line.
  A line that cannot be read (not UTF-8, over the intake's size limit, not JSON) fails alone,
  named by its line number (`-:line 7`); blank lines are skipped. A Bundle's case id is its
  `id` (else `line-N`);
* the cases recorded in a decision store (`store_cases`): each record keeps the case facts as
  the case stated them (docs/store.md), so a record gives its case back.
"""

from __future__ import annotations

import glob
import itertools
import re
import sys
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from ..errors import InputError
from .model import Inline

GLOB_CHARS = re.compile(r"[*?\[]")


def iter_inputs(inputs: Iterable[str], stdin: BinaryIO | None = None) -> Iterator:
    """The cases of CASES arguments, in order: paths (str) and `Inline` cases. A path or a
    pattern that names nothing is an InputError, raised before that argument's first case."""
    from ..case import collect_cases

    for arg in inputs:
        arg = str(arg)
        if arg == "-":
            yield from ndjson_cases(stdin if stdin is not None else sys.stdin.buffer)
        elif GLOB_CHARS.search(arg) and not Path(arg).exists():
            matches = sorted(glob.iglob(arg, recursive=True))
            if not matches:
                raise InputError("no file or folder matches the pattern", source=arg)
            for path in collect_cases(matches):
                yield str(path)
        else:
            for path in collect_cases([arg]):
                yield str(path)


def check_inputs(inputs: Iterable[str]) -> None:
    """Before anything is decided: every path exists and every pattern matches something
    (an InputError naming the first that does not)."""
    for arg in map(str, inputs):
        if arg == "-":
            continue
        if GLOB_CHARS.search(arg) and not Path(arg).exists():
            if next(glob.iglob(arg, recursive=True), None) is None:
                raise InputError("no file or folder matches the pattern", source=arg)
        elif not Path(arg).exists():
            raise InputError("file not found", source=arg)
    if sum(1 for arg in inputs if str(arg) == "-") > 1:
        raise InputError("standard input (-) can be read once", source="-")


def _max_line_bytes() -> int:
    from ..intake.envelope import MAX_BYTES

    return MAX_BYTES


def ndjson_cases(stream: BinaryIO, label: str = "-") -> Iterator[Inline]:
    """One `Inline` FHIR case per non-blank line; a line that cannot be read becomes an
    `Inline` of kind "error" (its message), so that it fails alone where it stands."""
    limit = _max_line_bytes()
    for n in itertools.count(1):
        raw = stream.readline(limit + 1)
        if not raw:
            return
        where = f"{label}:line {n}"
        if len(raw) > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                raw = stream.readline(1 << 20)
            yield Inline(where, "", "error", f"{where}: line is over the size limit of "
                                             f"{limit // 1_000_000} MB")
            continue
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            yield Inline(where, "", "error", f"{where}: not UTF-8 text ({exc.reason})")
            continue
        yield Inline(where, "", "fhir", text.strip())


def store_cases(store) -> Iterator[Inline]:
    """The cases recorded in a decision store, one per case (a case decided under several
    policies or versions is given once), as Turtle `Inline` cases in record order."""
    seen: set[str] = set()
    for iri in sorted(store.records()):
        record = store.record(iri)
        turtle, case_iri = record_case(record, iri)
        if case_iri is None or case_iri in seen:
            continue
        seen.add(case_iri)
        name = case_iri.rstrip("/").rsplit("/", 2)[-2] if "/" in case_iri else "record"
        yield Inline(f"{iri} (stored record)", f"{_safe(name)}.ttl", "turtle", turtle)


def record_case(record, det_iri: str) -> tuple[str, str | None]:
    """The case facts a record holds, as Turtle, and the case IRI: every triple but those
    about the determination (and its criterion results, information requests), the policy
    version and the reasoner software, the same split the record page makes (reasoner/server)."""
    from rdflib import Graph, URIRef

    from ..vocab import NR, bind_prefixes

    det = URIRef(det_iri)
    version = record.value(det, NR.underPolicyVersion)
    facts = Graph()
    bind_prefixes(facts)
    for s, p, o in record:
        if str(s).startswith(det_iri) or s == version or str(s).endswith("/software/reasoner"):
            continue
        facts.add((s, p, o))
    case = record.value(det, NR.forCase)
    return facts.serialize(format="turtle"), (str(case) if case is not None else None)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "record"
