"""Runs the SPARQL queries of `reasoner serve` under limits, in killable worker processes.

Each query goes to an idle worker (`reasoner.server.worker`), which evaluates it on a read-only
snapshot of the store and streams serialised results back. The parent:

- queues a query while every worker is busy, and answers 503 after `queue_timeout`;
- kills the worker when the query runs past the time limit, when the worker's resident memory
  passes the memory limit, or when the client disconnects; a fresh worker replaces it;
- forwards the first chunk with a clean status (an error before it is an HTTP error with a
  one-line reason), then streams the rest; a limit reached after the first chunk cuts the
  response (the connection closes without the final chunk: a client sees an error, never a
  silently truncated result).

Snapshots: the server is the store's only writer while it runs (RocksDB locks the folder), so
after each update it takes a new snapshot (`pyoxigraph.Store.backup`, hard links on the same file
system) and later queries read that one.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from . import worker as worker_module


@dataclass
class Limits:
    """The operator's limits (CLI options of `reasoner serve`; see docs/security.md)."""

    timeout: float = 10.0            # seconds per query, from dispatch to the last byte
    max_rows: int = 10_000           # solutions or triples per result
    max_bytes: int = 64 * 1024 ** 2  # serialised bytes per result
    memory: int = 1024 ** 3          # resident bytes per query worker
    workers: int = 2                 # queries evaluated at once
    queue_timeout: float = 30.0      # seconds a query may wait for a free worker
    allow_service: tuple[str, ...] = field(default_factory=tuple)


class QueryError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Worker:
    def __init__(self, ctx, limits: Limits, prefixes: dict[str, str]):
        self.conn, child = ctx.Pipe()
        # The address-space cap is generous (RocksDB maps files and reserves arenas); the RSS
        # watch in `QueryRunner._receive` is the real memory limit.
        self.proc = ctx.Process(target=worker_module.main,
                                args=(child, limits.memory * 4, prefixes), daemon=True)
        self.proc.start()
        child.close()

    def kill(self):
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class QueryRunner:
    def __init__(self, store, limits: Limits, prefixes: dict[str, str]):
        self.store, self.limits, self.prefixes = store, limits, prefixes
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._slots = None  # created in the event loop
        self._closed = False
        self._lock = threading.Lock()
        self._in_use: dict[str, int] = {}
        self._generation = 0
        base = Path(store.location).resolve().parent
        try:
            self._root = Path(tempfile.mkdtemp(prefix=".reasoner-serve-", dir=base))
        except OSError:
            self._root = Path(tempfile.mkdtemp(prefix="reasoner-serve-"))
        self._snapshot = ""
        self.refresh()
        for _ in range(limits.workers):
            self._idle.append(_Worker(self._ctx, limits, prefixes))

    # ------------------------------------------------------------------ snapshots
    def refresh(self) -> None:
        """Take a new snapshot of the store (after an update) and drop unused old ones."""
        with self._lock:
            self._generation += 1
            path = self._root / f"snapshot-{self._generation}"
            self.store.store.backup(str(path))
            old, self._snapshot = self._snapshot, str(path)
            self._drop_unused(old)

    def _drop_unused(self, path: str) -> None:
        if path and path != self._snapshot and not self._in_use.get(path):
            self._in_use.pop(path, None)
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        self._closed = True
        for w in self._idle:
            w.kill()
        self._idle = []
        shutil.rmtree(self._root, ignore_errors=True)

    # ------------------------------------------------------------------ running
    async def start(self, query: str, accept: str | None, is_disconnected):
        """Dispatch `query`; returns (media type, async iterator of the body chunks).
        Raises `QueryError` for a refusal, a bad query or a limit met before the first chunk."""
        if self._slots is None:
            self._slots = anyio.Semaphore(self.limits.workers)
        with anyio.move_on_after(self.limits.queue_timeout) as scope:
            await self._slots.acquire()
        if scope.cancelled_caught:
            raise QueryError(503, "the server is busy with other queries: try again later")
        deadline = time.monotonic() + self.limits.timeout  # from dispatch, not from arrival
        w = self._idle.pop() if self._idle else _Worker(self._ctx, self.limits, self.prefixes)
        with self._lock:
            path = self._snapshot
            self._in_use[path] = self._in_use.get(path, 0) + 1
        job = {"path": path, "query": query, "accept": accept, "max_rows": self.limits.max_rows,
               "max_bytes": self.limits.max_bytes, "allow": list(self.limits.allow_service)}
        state = {"done": False}

        def finish(ok: bool):
            if state["done"]:
                return
            state["done"] = True
            if ok and w.proc.is_alive():
                self._idle.append(w)
            else:
                w.kill()
                if not self._closed:  # a warm replacement for the next query
                    self._idle.append(_Worker(self._ctx, self.limits, self.prefixes))
            with self._lock:
                self._in_use[path] -= 1
                self._drop_unused(path)
            self._slots.release()

        try:
            w.conn.send(job)
            first = await self._receive(w, deadline, is_disconnected)
        except BaseException:
            finish(False)
            raise
        if first[0] == "error":
            finish(True)
            raise QueryError(first[1], first[2])
        media = first[1]

        async def body():
            ok = False
            try:
                while True:
                    msg = await self._receive(w, deadline, is_disconnected)
                    if msg[0] == "data":
                        yield msg[1]
                    elif msg[0] == "end":
                        ok = True
                        return
                    else:  # a limit met after the first chunk: cut the response
                        raise QueryError(msg[1], msg[2])
            finally:
                finish(ok)

        return media, body()

    async def _receive(self, w: _Worker, deadline: float, is_disconnected):
        limits = self.limits
        while True:
            ready = await anyio.to_thread.run_sync(w.conn.poll, 0.05)
            if ready:
                try:
                    return w.conn.recv()
                except (EOFError, OSError):
                    raise QueryError(503, "the query stopped: it exceeded the server's memory "
                                          "limit") from None
            if not w.proc.is_alive():
                raise QueryError(503, "the query stopped: it exceeded the server's memory limit")
            if worker_module.rss_bytes(w.proc.pid) > limits.memory:
                raise QueryError(503, f"the query exceeded the server's memory limit "
                                      f"({limits.memory // 1024 ** 2} MiB)")
            if time.monotonic() > deadline:
                raise QueryError(503, f"the query exceeded the server's time limit "
                                      f"({limits.timeout:g} s)")
            if await is_disconnected():
                raise QueryError(499, "the client left")
