"""Worker processes on this machine, fed blocks of cases from a stream, results in input order.

Each worker (forked from the parent, which loaded the knowledge base once) takes a block of
cases, not a case: it decides the block set-at-a-time when the block runner is available
(reasoner/engines/block.py), else one case at a time, sending each case's result as soon as it
has it. The parent hands out blocks as workers free up, reads at most `window` blocks ahead of
the oldest unfinished one (memory stays flat however long the input) and passes results on in
input order (the output is the same whatever the timing).

The time limit (`limit`) is per case (issue 12 point 3: the cost of a case is bounded): the
clock restarts with every result a worker sends. A worker that goes over it, or dies (a signal,
out of memory), is killed and replaced by a fresh one; the case it was deciding fails alone,
and the rest of its block goes back to the queue, decided one case at a time. A block decided
set-at-a-time that goes over the limit is not failed: its cases go back to the queue to be
decided one at a time, so that a slow case fails alone there.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .model import CaseResult
from .state import _init_worker


def timed_out(path: str, limit: float) -> CaseResult:
    return CaseResult(path, error=f"{path}: timed out after {limit:g} s (--case-timeout): "
                                  f"stopped, no record written", seconds=limit, timed_out=True)


def _worker_loop(conn, func, initargs, use_blocks: bool) -> None:
    """A worker: for each (items, one_at_a_time) the parent sends, send back lists of
    CaseResults (one list per case, or one list for a block decided set-at-a-time); stop on
    None."""
    from .state import block_runner

    _init_worker(*initargs)
    runner = block_runner() if use_blocks else None
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        items, one_at_a_time = task
        if runner is not None and not one_at_a_time and len(items) > 1:
            conn.send(runner(items))
            continue
        for item in items:
            conn.send([func(item)])


@dataclass
class _Block:
    index: int
    items: list
    results: list = field(default_factory=list)

    def __post_init__(self):
        self.results = [None] * len(self.items)

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.results)


@dataclass
class _Task:
    """Part of a block given to a worker: the positions still to decide."""

    block: _Block
    positions: list[int]
    one_at_a_time: bool


class _Worker:
    """One worker process and its pipe; it decides one task at a time."""

    def __init__(self, ctx, func, initargs, use_blocks):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_loop, args=(child, func, initargs, use_blocks),
                                daemon=True)
        self.proc.start()
        child.close()
        self.task: _Task | None = None
        self.deadline: float | None = None

    def give(self, task: _Task, limit: float | None) -> None:
        self.task = task
        self.deadline = time.monotonic() + limit if limit else None
        self.conn.send(([task.block.items[i] for i in task.positions], task.one_at_a_time))

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


def run_workers(blocks: Iterator[list], func: Callable, emit: Callable[[CaseResult], None],
                workers: int, initargs: tuple, limit: float | None, *,
                use_blocks: bool = True, window: int | None = None,
                in_flight: deque | None = None) -> int:
    """Decide the blocks of `blocks` on `workers` processes and call `emit` once per case in
    input order. Returns how many blocks were handed out. `in_flight` (a deque) is kept filled
    with the cases read but not yet emitted, for a caller that must name them when it stops."""
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    window = window or workers + 2  # blocks read ahead: results wait in memory in order
    queue: deque[_Task] = deque()
    open_blocks: deque[_Block] = deque()  # read and not yet emitted, in input order
    source = iter(blocks)
    exhausted, count = False, 0
    pool: list[_Worker] = []

    def refill() -> None:
        nonlocal exhausted, count
        while not queue and not exhausted and len(open_blocks) < window:
            items = next(source, None)
            if items is None:
                exhausted = True
                return
            block = _Block(count, list(items))
            count += 1
            open_blocks.append(block)
            queue.append(_Task(block, list(range(len(block.items))), False))
            if in_flight is not None:
                in_flight.extend(block.items)

    def flush() -> None:
        while open_blocks and open_blocks[0].done:
            block = open_blocks.popleft()
            for result in block.results:
                if in_flight:
                    in_flight.popleft()
                emit(result)

    def settle(w: _Worker, results: list[CaseResult]) -> None:
        task = w.task
        for result in results:
            task.block.results[task.positions.pop(0)] = result
        if task.positions:
            w.deadline = time.monotonic() + limit if limit else None
        else:
            w.task = w.deadline = None

    def fail_current(i: int, w: _Worker, make: Callable[[str], CaseResult]) -> None:
        """Kill the worker; its current case fails (unless the block was decided set-at-a-time)
        and the rest of its task goes back to the queue, one case at a time."""
        task = w.task
        w.kill()
        if task.one_at_a_time or len(task.positions) == 1:
            pos = task.positions.pop(0)
            task.block.results[pos] = make(str(task.block.items[pos]))
        if task.positions:
            queue.appendleft(_Task(task.block, task.positions, True))
        pool[i] = _Worker(ctx, func, initargs, use_blocks)

    from multiprocessing.connection import wait

    try:
        refill()
        pool.extend(_Worker(ctx, func, initargs, use_blocks) for _ in range(max(1, workers)))
        while queue or any(w.task is not None for w in pool):
            for w in pool:
                if w.task is None:
                    refill()
                    if queue:
                        w.give(queue.popleft(), limit)
            busy = [w for w in pool if w.task is not None]
            if not busy:
                break
            deadlines = [w.deadline for w in busy if w.deadline is not None]
            wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], wait_for)
            for i, w in enumerate(pool):
                if w.task is None:
                    continue
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        results = w.conn.recv() if w.conn.poll() else None
                    except (EOFError, OSError):
                        results = None
                    if results is None:  # the worker died with the case
                        w.kill()  # reaps it
                        code = w.proc.exitcode
                        how = f"signal {-code}" if code and code < 0 else f"exit code {code}"
                        fail_current(i, w, lambda p, how=how: CaseResult(
                            p, error=f"{p}: the worker deciding it died ({how}); "
                                     f"no record written"))
                    else:
                        settle(w, results)
                elif w.deadline is not None and time.monotonic() >= w.deadline:
                    fail_current(i, w, lambda p: timed_out(p, limit))
            flush()
            refill()
        flush()
    except BaseException:
        for w in pool:
            w.kill()
        raise
    for w in pool:
        w.stop()
    return count
