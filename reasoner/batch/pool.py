"""Decide many cases under one policy into a decision store, on every core.

Workers (processes forked from the parent, which loaded the knowledge base once) turn a case
path into its decision record as N-Triples; the parent process is the only writer to the store
and writes each record as one atomic operation (`reasoner.store`). So a crash, a SIGKILL or
Ctrl-C leaves every record written before it whole, and none written in part.

Each case has a time limit (`case_timeout`, issue 12 point 3: the cost of a case is bounded):
a case that exceeds it fails alone, named in the summary, and its worker is killed and replaced
by a fresh one; a worker that dies (a signal, out of memory) fails its case the same way. A store
that cannot take a record (a full disk, an unreachable endpoint) stops the batch: the summary
says which records were stored and which cases were not, and no record is written in part.

    from reasoner.batch import run_batch
    from reasoner.case import collect_cases
    from reasoner.store import open_store
    with open_store("decisions.oxigraph") as store:
        summary = run_batch(collect_cases(["cases"]), "lcd-l39240", store, workers=2)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import ReasonerError, redact
from .store import record_ntriples, safe_iri

DEFAULT_CASE_TIMEOUT = 120.0
"""Seconds one case may take by default (`reasoner batch --case-timeout`); the repo's cases take
well under 5 s each."""

#: How many not-stored cases a summary names one by one before it counts the rest.
NAMED_NOT_STORED = 10


@dataclass
class CaseResult:
    """What a worker returns for one case: the record, or the one-line error."""

    path: str
    iri: str | None = None
    outcome: str | None = None
    record: str | None = None  # N-Triples
    error: str | None = None
    seconds: float = 0.0
    timed_out: bool = False


@dataclass
class BatchSummary:
    total: int = 0
    written: int = 0
    outcomes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    interrupted: bool = False
    store_error: str | None = None  # why the store stopped taking records
    not_stored: list[str] = field(default_factory=list)  # cases decided or due but not stored

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"
        out = [f"{self.written} of {self.total} cases decided and stored ({counts})",
               f"{self.seconds:.1f} s, {self.rate:.1f} cases/s on {self.workers} worker(s)"]
        if self.errors:
            out.append(f"{len(self.errors)} case(s) failed:")
            out.extend(f"  {e}" for e in self.errors)
        if self.store_error:
            out.append(f"stopped: the store took no more records: {self.store_error}")
            out.append(f"{self.written} record(s) stored whole; {len(self.not_stored)} case(s) "
                       f"not stored:")
            out.extend(f"  {p}" for p in self.not_stored[:NAMED_NOT_STORED])
            if len(self.not_stored) > NAMED_NOT_STORED:
                out.append(f"  and {len(self.not_stored) - NAMED_NOT_STORED} more")
        if self.interrupted:
            out.append("interrupted: the records above are stored, the rest were not decided")
        return [redact(line) for line in out]


# ---------------------------------------------------------------------- worker side

_WORKER: dict = {}


def _init_worker(root: str | None, policy_id: str, version: str | None) -> None:
    # Ctrl-C goes to the whole process group: the parent handles it; workers just stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if not _WORKER:  # "spawn": nothing inherited, build the state here, once per worker
        _init_state(root, policy_id, version)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the parent dies (e.g. SIGKILL), instead of lingering."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(0)
    except (OSError, AttributeError):
        pass


def _init_state(root: str | None, policy_id: str, version: str | None) -> None:
    import logging

    from .api import Reasoner

    cached = _WORKER.get("reasoner")
    if cached is not None and _WORKER.get("root") == root:
        cached.kb.pack(policy_id)
        _WORKER.update(policy=policy_id, version=version)
        return
    # A version label with spaces makes rdflib warn on every determination IRI; the store
    # percent-encodes such IRIs (store.safe_iri), so the warning is noise in a batch.
    logging.getLogger("rdflib.term").setLevel(logging.ERROR)

    reasoner = Reasoner.load(root)
    reasoner.kb.pack(policy_id)  # an unknown policy fails here, once
    _WORKER.update(reasoner=reasoner, policy=policy_id, version=version, root=root)


def decide_one(path: str) -> CaseResult:
    """Decide one case with the worker's reasoner: its record as N-Triples."""
    start = time.perf_counter()
    r = _WORKER["reasoner"]
    try:
        case = r.load_case(path)
        d = r.determine(case, _WORKER["policy"], _WORKER["version"])
        nt = record_ntriples(r.record_graph(d, case))
        return CaseResult(path, safe_iri(d.iri), d.outcome, nt, seconds=time.perf_counter() - start)
    except ReasonerError as exc:
        return CaseResult(path, error=str(exc), seconds=time.perf_counter() - start)
    except RecursionError:  # input nested deeper than the recursion limit: the input's fault
        return CaseResult(path, error=f"{path}: input nested too deeply to read",
                          seconds=time.perf_counter() - start)
    except Exception as exc:  # one bad case must not stop the batch
        return CaseResult(path, error=f"{path}: internal error: {type(exc).__name__}: {exc}",
                          seconds=time.perf_counter() - start)


# ---------------------------------------------------------------------- parent side

class _CaseTimeout(BaseException):
    """Raised by the alarm in the parent; a BaseException so no `except Exception` eats it."""


class _StoreFailed(Exception):
    """The store refused a record: the batch stops (every later write would fail too)."""


def _timed_out(path: str, limit: float) -> CaseResult:
    return CaseResult(path, error=f"{path}: timed out after {limit:g} s (--case-timeout): "
                                  f"stopped, no record written", seconds=limit, timed_out=True)


def _decide_in_parent(func, item: str, limit: float | None) -> CaseResult:
    """Decide one case here, stopped by SIGALRM after `limit` s (main thread, POSIX)."""
    import threading

    if not limit or not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        return func(item)

    armed = [True]

    def expire(signum, frame):
        if armed[0]:  # not once the case has returned
            raise _CaseTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        result = func(item)
        armed[0] = False
        return result
    except _CaseTimeout:
        return _timed_out(item, limit)
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _worker_loop(conn, func, initargs) -> None:
    """A worker: decide each path the parent sends, send back its CaseResult; stop on None."""
    _init_worker(*initargs)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        conn.send(func(item))


class _Worker:
    """One worker process and its pipe; it decides one case at a time."""

    def __init__(self, ctx, func, initargs):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_loop, args=(child, func, initargs), daemon=True)
        self.proc.start()
        child.close()
        self.item: str | None = None
        self.deadline: float | None = None

    def give(self, item: str, limit: float | None) -> None:
        self.item = item
        self.deadline = time.monotonic() + limit if limit else None
        self.conn.send(item)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()  # SIGKILL: a case stuck in native code stops too
        self.proc.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _run_workers(items, func, handle, summary, workers, initargs, limit) -> None:
    """Decide `items` on `workers` processes, each case within `limit` seconds: a case over
    the limit (or whose worker dies) fails alone, and its worker is killed and replaced."""
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    pending = list(reversed(items))
    pool = [_Worker(ctx, func, initargs) for _ in range(min(workers, len(items)))]
    try:
        while pending or any(w.item is not None for w in pool):
            for w in pool:
                if w.item is None and pending:
                    w.give(pending.pop(), limit)
            busy = [w for w in pool if w.item is not None]
            deadlines = [w.deadline for w in busy if w.deadline is not None]
            wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], wait_for)
            for i, w in enumerate(pool):
                if w.item is None:
                    continue
                result = None
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        result = w.conn.recv() if w.conn.poll() else None
                    except (EOFError, OSError):
                        result = None
                    if result is None:  # the worker died with the case
                        w.kill()  # reaps it
                        code = w.proc.exitcode
                        how = f"signal {-code}" if code and code < 0 else f"exit code {code}"
                        result = CaseResult(w.item, error=f"{w.item}: the worker deciding it "
                                                          f"died ({how}); no record written")
                        pool[i] = _Worker(ctx, func, initargs)
                    else:
                        w.item = w.deadline = None
                elif w.deadline is not None and time.monotonic() >= w.deadline:
                    w.kill()
                    result = _timed_out(w.item, limit)
                    pool[i] = _Worker(ctx, func, initargs)  # a fresh worker, forked again
                if result is not None:
                    handle(result)
    except KeyboardInterrupt:
        summary.interrupted = True
        for w in pool:
            w.kill()
        return
    except BaseException:
        for w in pool:
            w.kill()
        raise
    for w in pool:
        w.stop()


def run_batch(paths: list[Path | str], policy_id: str, store, *, version: str | None = None,
              workers: int | None = None, root: str | os.PathLike | None = None,
              progress: Callable[[CaseResult], None] | None = None,
              decide: Callable[[str], CaseResult] | None = None,
              case_timeout: float | None = DEFAULT_CASE_TIMEOUT) -> BatchSummary:
    """Decide every case and write each record to `store` as it arrives.

    `workers`: processes (default: every core). `case_timeout`: seconds one case may take
    (None or 0: no limit); a case over it fails alone and its worker is replaced. `progress`
    is called once per case, after its record is stored (or its error noted). `decide`
    replaces the worker function (benchmarks use it to re-decide cases under synthetic ids).
    On KeyboardInterrupt the workers are stopped, the store flushed, and the summary returned
    with `interrupted` set. When the store refuses a record (OSError such as ENOSPC, or an
    endpoint's error) the batch stops and the summary's `store_error` and `not_stored` say
    what was and was not stored."""
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(paths) or 1))
    limit = case_timeout or None
    root_text = str(root) if root else None
    summary = BatchSummary(total=len(paths), workers=workers)
    start = time.perf_counter()
    items = [str(p) for p in paths]
    func = decide or decide_one
    done: set[str] = set()  # stored, or failed with their own error

    def handle(result: CaseResult) -> None:
        if result.error:
            summary.errors.append(redact(result.error))
        else:
            try:
                store.put(result.iri, result.record)
            except (OSError, ReasonerError) as exc:
                summary.store_error = _store_error(exc)
                raise _StoreFailed() from None
            summary.written += 1
            summary.outcomes[result.outcome] += 1
        done.add(result.path)
        if progress:
            progress(result)

    # The state is built once, here (an unknown policy fails fast, exit 2), and forked
    # workers inherit it copy-on-write; with "spawn" each worker builds its own, once.
    _init_state(root_text, policy_id, version)
    try:
        if items:
            # The first case is decided here (within the time limit): it warms the caches
            # (parsed SPARQL constraints, concept descriptions) the forked workers inherit.
            first = _decide_in_parent(func, items[0], limit)
            if first.timed_out:
                # stopped part-way: build the state again rather than fork a half-warm cache
                _WORKER.clear()
                _init_state(root_text, policy_id, version)
            handle(first)
        if len(items) > 1:
            _run_workers(items[1:], func, handle, summary, workers,
                         (root_text, policy_id, version), limit)
    except KeyboardInterrupt:
        summary.interrupted = True
    except _StoreFailed:
        summary.not_stored = [p for p in items if p not in done]
    if summary.store_error is None and hasattr(store, "flush"):
        try:
            store.flush()
        except OSError as exc:
            summary.store_error = _store_error(exc)
    summary.seconds = time.perf_counter() - start
    return summary


def _store_error(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return redact(" ".join(str(text).split())[:300])
