"""Decide many cases under one policy into a decision store, on every core.

Workers (a `multiprocessing` pool) each load the knowledge base once (the pool initializer) and
turn a case path into its decision record as N-Triples; the parent process is the only writer to
the store and writes each record as one atomic operation (`reasoner.store`). So a crash, a
SIGKILL or Ctrl-C leaves every record written before it whole, and none written in part.

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

from .errors import ReasonerError
from .store import record_ntriples, safe_iri



@dataclass
class CaseResult:
    """What a worker returns for one case: the record, or the one-line error."""

    path: str
    iri: str | None = None
    outcome: str | None = None
    record: str | None = None  # N-Triples
    error: str | None = None
    seconds: float = 0.0


@dataclass
class BatchSummary:
    total: int = 0
    written: int = 0
    outcomes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    interrupted: bool = False

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
        if self.interrupted:
            out.append("interrupted: the records above are stored, the rest were not decided")
        return out


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
    except Exception as exc:  # one bad case must not stop the batch
        return CaseResult(path, error=f"{path}: internal error: {type(exc).__name__}: {exc}",
                          seconds=time.perf_counter() - start)


# ---------------------------------------------------------------------- parent side

def _run_pool(items, func, handle, summary, workers, initargs) -> None:
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=initargs)
    try:
        for result in pool.imap_unordered(func, items, chunksize=1):
            handle(result)
        pool.close()
    except KeyboardInterrupt:
        summary.interrupted = True
        pool.terminate()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def run_batch(paths: list[Path | str], policy_id: str, store, *, version: str | None = None,
              workers: int | None = None, root: str | os.PathLike | None = None,
              progress: Callable[[CaseResult], None] | None = None,
              decide: Callable[[str], CaseResult] | None = None) -> BatchSummary:
    """Decide every case and write each record to `store` as it arrives.

    `workers`: processes (default: every core; 1 decides in this process). `progress` is called
    once per case, after its record is stored (or its error noted). `decide` replaces the
    worker function (benchmarks use it to re-decide cases under synthetic ids).
    On KeyboardInterrupt the pool is stopped, the store flushed, and the summary returned with
    `interrupted` set."""
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(paths) or 1))
    root_text = str(root) if root else None
    summary = BatchSummary(total=len(paths), workers=workers)
    start = time.perf_counter()
    items = [str(p) for p in paths]
    func = decide or decide_one

    def handle(result: CaseResult) -> None:
        if result.error:
            summary.errors.append(result.error)
        else:
            store.put(result.iri, result.record)
            summary.written += 1
            summary.outcomes[result.outcome] += 1
        if progress:
            progress(result)

    if workers == 1:
        _init_state(root_text, policy_id, version)
        try:
            for item in items:
                handle(func(item))
        except KeyboardInterrupt:
            summary.interrupted = True
    else:
        # The state is built once, here (an unknown policy fails fast, exit 2), and forked
        # workers inherit it copy-on-write; with "spawn" each worker builds its own, once.
        _init_state(root_text, policy_id, version)
        try:
            # The first case is decided here: it warms the caches (parsed SPARQL constraints,
            # concept descriptions) that the forked workers then inherit.
            handle(func(items[0]))
        except KeyboardInterrupt:
            summary.interrupted = True
        if not summary.interrupted and len(items) > 1:
            _run_pool(items[1:], func, handle, summary, workers, (root_text, policy_id, version))
    if hasattr(store, "flush"):
        store.flush()
    summary.seconds = time.perf_counter() - start
    return summary
