"""`run_batch`: decide a stream of cases in blocks, on this machine's cores or on a Dask
cluster, and write each result to a sink (a decision store, an NDJSON or a Parquet file) in
input order.

The parent process is the only writer: a store gets each record as one atomic operation
(reasoner/store.py), so a crash, a SIGKILL or Ctrl-C leaves every record written before it
whole, and none written in part; a file is renamed into place when the batch ends. A store that
cannot take a record (a full disk, an unreachable endpoint) stops the batch: the summary says
which records were stored and which cases were not.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from typing import Callable, Iterable

from ..errors import ReasonerError, redact
from .model import BatchSummary, CaseResult
from .sinks import StoreSink
from .state import _WORKER, _init_state, freeze_state

DEFAULT_CASE_TIMEOUT = 120.0
"""Seconds one case may take by default (`reasoner batch --case-timeout`); the repo's cases take
well under 5 s each."""

DEFAULT_BLOCK_SIZE = 200
"""Cases per block (`--block-size`): large enough that a block decided set-at-a-time pays its
queries once for many cases, small enough that two workers share a few hundred cases."""


class _StoreFailed(Exception):
    """The store refused a record: the batch stops (every later write would fail too)."""


def blocks_of(items: Iterable, size: int) -> Iterable[list]:
    """Consecutive blocks of `size` items; the last may be shorter."""
    it = iter(items)
    while True:
        block = list(itertools.islice(it, size))
        if not block:
            return
        yield block


def even_blocks(known: int, block_size: int, workers: int) -> int:
    """The block size for an input of `known` cases: at most `block_size`, and as many blocks
    as a multiple of `workers`, all of one size but the last, so that no worker is left with
    one block more than the others at the end (600 cases in blocks of 200 on 2 workers would
    keep one worker busy for the third block alone: blocks of 150 instead)."""
    if known <= 0:
        return 1
    count = math.ceil(known / max(block_size, 1))
    count = math.ceil(count / workers) * workers
    return max(1, math.ceil(known / count))


def run_batch(paths: Iterable, policy_id: str, store, *, version: str | None = None,
              workers: int | None = None, root: str | os.PathLike | None = None,
              progress: Callable[[CaseResult], None] | None = None,
              decide: Callable[[str], CaseResult] | None = None,
              case_timeout: float | None = DEFAULT_CASE_TIMEOUT,
              block_size: int = DEFAULT_BLOCK_SIZE, cluster=None) -> BatchSummary:
    """Decide every case and write each result to `store` as it arrives, in input order.

    `paths`: case paths (str or Path) and `Inline` cases (sources.py), a list or a lazy
    iterator. `store`: a decision store, or a sink (sinks.py). `workers`: processes (default:
    every core). `block_size`: cases per block handed to a worker. `case_timeout`: seconds one
    case may take (None or 0: no limit); a case over it fails alone and its worker is replaced.
    `cluster`: a `distributed.Client` (cluster.py); then the blocks run on its workers.
    `progress` is called once per case, after its result is written (or its error noted).
    `decide` replaces the worker function (benchmarks and tests); cases are then decided one at
    a time inside each block. On KeyboardInterrupt the workers are stopped, the sink flushed,
    and the summary returned with `interrupted` set."""
    import reasoner.batch as pkg  # tests replace `reasoner.batch.decide_one`

    sink = store if hasattr(store, "take") else StoreSink(store)
    known = len(paths) if hasattr(paths, "__len__") else None
    workers = workers or os.cpu_count() or 1
    if known is not None:
        workers = max(1, min(workers, known or 1))
        block_size = even_blocks(known, block_size, workers)
    limit = case_timeout or None
    root_text = str(root) if root else None
    summary = BatchSummary(total=known or 0, workers=workers, target=sink.target)
    start = time.perf_counter()
    func = decide or pkg.decide_one
    in_flight: deque = deque()

    def handle(result: CaseResult) -> None:
        if known is None:
            summary.total += 1
        if result.error:
            summary.errors.append(redact(result.error))
        else:
            try:
                sink.take(result)
            except (OSError, ReasonerError) as exc:
                summary.store_error = _store_error(exc)
                if known is None:
                    summary.total -= 1
                raise _StoreFailed(result.path) from None
            summary.written += 1
            summary.outcomes[result.outcome] += 1
        if progress:
            progress(result)

    # The state is built once, here (an unknown policy fails fast, exit 2), and forked
    # workers inherit it copy-on-write; with "spawn" each worker builds its own, once.
    try:
        _init_state(root_text, policy_id, version, sink.output)
        if hasattr(sink, "prepare"):
            sink.prepare(_WORKER["reasoner"].kb, policy_id)
        return _run(paths, policy_id, version, root_text, sink, summary, handle, func, limit,
                    workers, block_size, cluster, known, _blocks_allowed(func), in_flight,
                    start)
    except BaseException:
        sink.discard()  # a file is not left half-written; a store keeps its whole records
        raise


def _run(paths, policy_id, version, root_text, sink, summary, handle, func, limit, workers,
         block_size, cluster, known, use_blocks, in_flight, start) -> BatchSummary:
    import reasoner.batch as pkg

    source = iter(paths)
    try:
        first = next(source, None)
        if first is not None and cluster is None:
            # The first case is decided here (within the time limit): it warms the caches
            # (parsed SPARQL constraints, concept descriptions) the forked workers inherit.
            in_flight.append(first)
            result = _decide_in_parent(func, first, limit)
            if result.timed_out:
                # stopped part-way: build the state again rather than fork a half-warm cache
                _WORKER.clear()
                _init_state(root_text, policy_id, version, sink.output)
            in_flight.popleft()
            handle(result)
            freeze_state()  # with the caches it warmed, before the workers fork
        elif first is not None:
            source = itertools.chain([first], source)
        blocks = blocks_of(source, block_size)
        if cluster is not None:
            from .cluster import run_on_cluster

            summary.where = f"a Dask cluster ({len(cluster.scheduler_info()['workers'])} " \
                            f"worker(s))"
            summary.blocks = run_on_cluster(cluster, blocks, handle, root_text, policy_id,
                                            version, sink.output, in_flight=in_flight)
        elif first is not None:
            summary.blocks = pkg.pool.run_workers(
                blocks, func, handle, workers, (root_text, policy_id, version, sink.output),
                limit, use_blocks=use_blocks, in_flight=in_flight)
    except KeyboardInterrupt:
        summary.interrupted = True
    except _StoreFailed as failed:
        summary.not_stored = [str(failed.args[0]), *(str(p) for p in in_flight
                                                     if str(p) != str(failed.args[0]))]
        # a list is named whole; of a stream, what was read (the rest is never read)
        summary.not_stored += [str(p) for p in source] if known is not None else []
        if known is None:
            summary.total += len(summary.not_stored)
    if summary.store_error is None:
        try:
            sink.commit() if not summary.interrupted else sink.abort()
        except OSError as exc:
            summary.store_error = _store_error(exc)
    else:
        sink.discard()
    summary.seconds = time.perf_counter() - start
    return summary


def _blocks_allowed(func) -> bool:
    """Set-at-a-time only with the standard worker function: a replaced one (`decide=`, or
    `reasoner.batch.decide_one` replaced, as tests and benchmarks do) decides every case."""
    from .state import decide_one

    return func is decide_one


class _CaseTimeout(BaseException):
    """Raised by the alarm in the parent; a BaseException so no `except Exception` eats it."""


def _decide_in_parent(func, item, limit: float | None) -> CaseResult:
    """Decide one case here, stopped by SIGALRM after `limit` s (main thread, POSIX)."""
    import signal
    import threading

    from .pool import timed_out

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
        return timed_out(str(item), limit)
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _store_error(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return redact(" ".join(str(text).split())[:300])
