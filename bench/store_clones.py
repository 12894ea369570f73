"""The benchmark's decision store: `decisions` records cloned from the decided corpus, each whole
(every triple `reasoner batch --store` writes) and with its summary, bulk loaded into an on-disk
pyoxigraph store; kept in a cache folder keyed by its inputs so that a second run reuses it.

Cloning (docs/store.md, "Performance"): clone i of the n corpus records is record i mod n under
the case id ``<id>-b<i>`` (every IRI under the case's and the determination's base renamed), with
every ``xsd:date`` literal moved by (37 i mod 365) days. Verdicts are copied, not re-derived: the
latency of the queries depends on the shape and size of the data, which the clones keep. A clone's
text is `clone_record` of its original; the builder renders it from a template of the original
(the id and the dates as slots), checked against `clone_record` on a sample. Each clone's summary
is `reasoner.summary.summary_ntriples` of the clone; clones of the same original and shift differ
only in their id, so they share the computation (checked on a sample too).

Why it is built this way (measured on the 2-core machine, 100,000 records = 78 M quads): the
store's cost is pyoxigraph's bulk loader (parse, encode, sort the six quad indexes, write SST
files: about 10 ms of CPU per record), so the clones' text is produced in a Python thread that
writes into a pipe while the loader reads it in the calling thread, one `bulk_load` for the whole
store (one commit); rendering a clone from its template takes about 0.1 ms, where replacing
strings in the record text took 2.3 ms. The loaded store is then compacted (`Store.optimize`) so
that queries do not merge dozens of overlapping files, nor compete with RocksDB's background
compaction while they are timed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pyoxigraph as ox

from reasoner.summary import SUMMARY_FORMAT, SUMMARY_GRAPH, summary_ntriples
from reasoner.vocab import CASE_BASE, DETERMINATION_BASE, NR

XSD_DATE = "http://www.w3.org/2001/XMLSchema#date"
_DATE = re.compile(r'"(\d{4}-\d{2}-\d{2})"\^\^<' + re.escape(XSD_DATE) + ">")
_ID, _DAY = "\x00", "\x01"  # slot marks in a template (a record's N-Triples never hold them)
_DAY_SLOT = re.compile(rb"\x01(\d+)\x01")
SAMPLE = 1000  #: every SAMPLE-th clone (and the first of each original) is checked


def clone_id(case_id: str, i: int) -> str:
    return f"{case_id}-b{i}"


def shift_of(i: int) -> int:
    return (37 * i) % 365


def clone_record(nt: str, case_id: str, new_id: str, shift_days: int) -> str:
    """A record (N-Triples) under another case id, every xsd:date moved by `shift_days` (all at
    once: a date moved onto another date of the record is not moved again)."""
    text = nt.replace(f"{CASE_BASE}{case_id}/", f"{CASE_BASE}{new_id}/")
    text = text.replace(f"{DETERMINATION_BASE}{case_id}/", f"{DETERMINATION_BASE}{new_id}/")
    if not shift_days:
        return text
    delta = timedelta(days=shift_days)
    return _DATE.sub(lambda m: f'"{(date.fromisoformat(m.group(1)) + delta).isoformat()}"'
                               f'^^<{XSD_DATE}>', text)


def as_quads(nt: str, graph: str) -> str:
    """N-Triples "s p o ." -> N-Quads "s p o <graph> ." (a literal holds no raw newline)."""
    return nt.replace(" .\n", f" <{graph}> .\n")


class Template:
    """One decided record as N-Quads in its graph, with the case id and the xsd:date literals as
    slots: `render(i)` is `as_quads(clone_record(...))` of clone i, without string replacing."""

    def __init__(self, iri: str, record: str):
        if _ID in record or _DAY in record:
            raise ValueError(f"{iri}: a record holds a slot mark")
        self.iri, self.record = iri, record
        self.case_id = iri[len(DETERMINATION_BASE):].split("/", 1)[0]
        text = as_quads(record, iri)
        text = text.replace(f"{CASE_BASE}{self.case_id}/", f"{CASE_BASE}{_ID}/")
        text = text.replace(f"{DETERMINATION_BASE}{self.case_id}/", f"{DETERMINATION_BASE}{_ID}/")
        self.days = sorted({date.fromisoformat(d) for d in _DATE.findall(text)})
        index = {d.isoformat(): n for n, d in enumerate(self.days)}
        text = _DATE.sub(lambda m: f'"{_DAY}{index[m.group(1)]}{_DAY}"^^<{XSD_DATE}>', text)
        parts = _DAY_SLOT.split(text.encode("utf-8"))
        # even parts: text split at the id slots; odd parts: the index of a date
        self.parts = [p.split(_ID.encode()) if n % 2 == 0 else int(p) for n, p in enumerate(parts)]
        self.lines = record.count("\n")

    def graph(self, new_id: str) -> str:
        return self.iri.replace(f"{DETERMINATION_BASE}{self.case_id}/",
                                f"{DETERMINATION_BASE}{new_id}/")

    def render(self, new_id: str, shift_days: int) -> bytes:
        idb = new_id.encode("utf-8")
        delta = timedelta(days=shift_days)
        days = [(d + delta).isoformat().encode() for d in self.days]
        return b"".join([days[p] if n % 2 else idb.join(p) for n, p in enumerate(self.parts)])

    def reference(self, new_id: str, shift_days: int) -> bytes:
        """The clone as `clone_record` makes it: what `render` must equal."""
        nt = clone_record(self.record, self.case_id, new_id, shift_days)
        return as_quads(nt, self.graph(new_id)).encode("utf-8")


class Clones:
    """Clone i of `originals` ((determination IRI, record N-Triples) pairs, sorted) with its
    summary, as N-Quads."""

    def __init__(self, originals: list[tuple[str, str]]):
        self.templates = [Template(iri, nt) for iri, nt in originals]
        self._summaries: dict[tuple[int, int], tuple[str, str]] = {}
        self.checked = 0
        self.summary_seconds = 0.0

    def quads(self, i: int) -> tuple[bytes, bytes]:
        """(record N-Quads, summary N-Quads) of clone i."""
        k, shift = i % len(self.templates), shift_of(i)
        t = self.templates[k]
        new_id = clone_id(t.case_id, i)
        record = t.render(new_id, shift)
        check = i < len(self.templates) or i % SAMPLE == 0
        if check and record != t.reference(new_id, shift):
            raise AssertionError(f"clone {i}: the template differs from clone_record")
        start = time.perf_counter()
        graph = t.graph(new_id)
        known = self._summaries.get((k, shift))
        if known is None or check:
            summary = summary_ntriples(graph, clone_record(t.record, t.case_id, new_id, shift))
            if known is None:
                self._summaries[(k, shift)] = (new_id, summary)
        if known is not None:
            first_id, first = known
            shared = first.replace(f"/{first_id}/", f"/{new_id}/").replace(
                f'"{first_id}"', f'"{new_id}"')
            if check:
                if shared != summary:
                    raise AssertionError(f"clone {i}: the shared summary differs")
                self.checked += 1
            summary = shared
        self.summary_seconds += time.perf_counter() - start
        return record, as_quads(summary, SUMMARY_GRAPH).encode("utf-8")


def cache_key(originals: list[tuple[str, str]], decisions: int) -> str:
    """What the store is a function of: the records cloned (as sets of triples: rdflib writes
    a graph's triples in an order that changes between runs), how many clones, how they are
    made (the source of the functions that make them), the summary (reasoner/summary.py) and
    the store's version."""
    from reasoner import summary

    h = hashlib.sha256()
    makers = (clone_id, shift_of, clone_record, as_quads, Template, Clones, load_clones, build)
    for part in (str(decisions), ox.__version__, SUMMARY_FORMAT, inspect.getsource(summary),
                 *(inspect.getsource(f) for f in makers)):
        h.update(part.encode("utf-8") + b"\0")
    for iri, nt in originals:
        lines = "\n".join(sorted(nt.split("\n")))
        h.update(iri.encode("utf-8") + b"\0" + lines.encode("utf-8") + b"\0")
    return h.hexdigest()


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "necessity-reasoner" / "bench-store"


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_clones(store: ox.Store, clones: Clones, decisions: int, progress: int = 10_000) -> int:
    """Bulk load every clone (records and summaries) in one `bulk_load`, fed through a pipe by a
    writer thread; returns the number of record quads written."""
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    state: dict = {"lines": 0, "error": None}

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                for i in range(decisions):
                    record, summary = clones.quads(i)
                    out.write(record)
                    out.write(summary)
                    state["lines"] += clones.templates[i % len(clones.templates)].lines
                    if progress and (i + 1) % progress == 0:
                        print(f"  {i + 1:,} of {decisions:,} clones written "
                              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        except BrokenPipeError:  # the loader stopped: its error is the one to report
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            state["error"] = exc

    writer = threading.Thread(target=write, name="clone-writer", daemon=True)
    writer.start()
    try:
        store.bulk_load(path=f"/dev/fd/{read_fd}", format=ox.RdfFormat.N_QUADS)
    finally:
        os.close(read_fd)
        writer.join()
    if state["error"] is not None:
        raise state["error"]
    return state["lines"]


def build(path: Path, originals: list[tuple[str, str]], decisions: int) -> dict:
    """A fresh store at `path` holding `decisions` clones with their summaries; compacted."""
    start = time.perf_counter()
    store = ox.Store(str(path))
    clones = Clones(originals)
    record_quads = load_clones(store, clones, decisions)
    store.update(f'INSERT DATA {{ GRAPH <{SUMMARY_GRAPH}> {{ <{SUMMARY_GRAPH}> '
                 f'<{NR}summaryFormat> "{SUMMARY_FORMAT}" }} }}')
    loaded = time.perf_counter() - start
    t = time.perf_counter()
    store.optimize()
    compacted = time.perf_counter() - t
    store.flush()
    del store
    return {"load_seconds": round(loaded, 1), "compact_seconds": round(compacted, 1),
            "summary_seconds": round(clones.summary_seconds, 1),
            "record_quads": record_quads, "checked_clones": clones.checked}


def cached_store(originals: list[tuple[str, str]], decisions: int,
                 cache: Path | None) -> tuple[Path, dict]:
    """The store folder for these inputs and its build figures: reused from `cache` when a
    complete build with the same key is there, else built (into a temporary folder renamed when
    complete, so an interrupted build is never reused; other builds of the same size are
    removed). With `cache` None, built under a temporary folder the caller removes."""
    key = cache_key(originals, decisions)
    if cache is None:
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="bench-store-")) / "store"
        figures = build(path, originals, decisions)
        return path, {**figures, "cache": None, "reused": False}
    cache.mkdir(parents=True, exist_ok=True)
    name = f"{decisions}-{key[:20]}"
    path, marker = cache / name, cache / f"{name}.json"
    if path.is_dir() and marker.is_file():
        figures = json.loads(marker.read_text(encoding="utf-8"))
        return path, {**figures, "cache": str(path), "reused": True}
    for old in cache.glob(f"{decisions}-*"):  # stale builds of this size, partial ones
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    partial = cache / f"{name}.partial-{os.getpid()}"
    figures = build(partial, originals, decisions)
    os.rename(partial, path)
    tmp = cache / f"{name}.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    os.replace(tmp, marker)
    return path, {**figures, "cache": str(path), "reused": False}
