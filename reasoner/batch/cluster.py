"""The same blocks on a Dask distributed cluster (`reasoner batch --cluster ADDRESS`).

The client (the `reasoner` process) reads the cases, sends each block to the cluster as one
task, and writes every result itself, in input order, exactly as a run on this machine does:
the cluster never writes to the store or the output file. Each task carries its cases' text,
not their paths (a worker needs no shared file system); a worker loads the knowledge base once
per process (the module-level state of `state.py`, kept across tasks) and decides the block as
a local worker does (`state.decide_block`). Before the first block the client checks that every
worker's knowledge base has the same files as its own (the content hashes a record carries):
a cluster with other files would decide differently.

`local:N` starts a `LocalCluster` of N worker processes on this machine (one thread each),
speaking the real scheduler protocol over TCP on the loopback interface. The per-case time
limit is not enforced on a cluster (a Dask task cannot be stopped from outside); a block whose
task fails (its worker died) is sent again one case per task, so that a failing case fails
alone. Running it on real machines: docs/cluster.md.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from pathlib import Path
from typing import Callable, Iterable

from ..errors import InputError, KnowledgeError
from .model import CaseResult, Inline

_LOCK = threading.Lock()  # a worker with several threads decides one block at a time


def connect(address: str):
    """A `distributed.Client` for ADDRESS (`tcp://host:8786`, `host:8786`) or `local:N`."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency of the package
        raise InputError("--cluster needs dask[distributed] installed") from None
    if address.startswith("local:"):
        try:
            n = int(address[len("local:"):])
        except ValueError:
            n = 0
        if not 1 <= n <= 64:
            raise InputError("--cluster local:N needs N from 1 to 64", source=address)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, protocol="tcp")
        return Client(cluster)
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler: {exc}", source=address) from None


def close(client) -> None:
    import logging

    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:  # local:N: its workers are ours to stop, without log lines
        logging.getLogger("distributed").setLevel(logging.ERROR)
        cluster.close()


def kb_digest(file_hashes: dict[str, str]) -> str:
    """One hash of the knowledge base's files (path and content hash of each)."""
    text = "\n".join(f"{path}\t{digest}" for path, digest in sorted(file_hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _worker_state(root, policy_id, version, output, engine=None) -> str:
    """On a worker: the state (built once per process) and its knowledge base's digest.
    `engine`: the client's NECESSITY_ENGINE (`--engine`), which a worker started elsewhere
    does not inherit."""
    import os

    from .state import _WORKER, _init_state

    with _LOCK:
        if engine and os.environ.get("NECESSITY_ENGINE") != engine:
            os.environ["NECESSITY_ENGINE"] = engine
            _WORKER.clear()  # loaded with another engine: load again
        if _WORKER.get("reasoner") is None or _WORKER.get("root") != root \
                or (_WORKER.get("policy"), _WORKER.get("version"), _WORKER.get("output")) \
                != (policy_id, version, output):
            _init_state(root, policy_id, version, output)
        return kb_digest(_WORKER["reasoner"].kb.file_hashes)


def _run_block(items, root, policy_id, version, output, digest, engine=None) -> list:
    """A task: decide one block on a worker."""
    from .state import decide_block

    if _worker_state(root, policy_id, version, output, engine) != digest:
        raise KnowledgeError("this worker's knowledge base differs from the client's (other "
                             "files; see docs/cluster.md)")
    with _LOCK:
        return decide_block(items)


def shippable(item) -> Inline:
    """A case as text (a worker may not see the client's files): its case file read here,
    named so that its case id is the one the file gives; messages name the file."""
    if isinstance(item, Inline):
        return item
    from ..case import CASE_FILES

    path = Path(item)
    if path.is_dir():
        path = next((path / n for n in CASE_FILES if (path / n).exists()), path)
    name = f"{path.parent.name}{path.suffix}" if path.stem in ("case", "bundle") else path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Inline(str(path), "", "error", f"{path}: cannot read: {exc.strerror or exc}")
    kind = "turtle" if path.suffix.lower() == ".ttl" else "fhir"
    return Inline(str(path), name or "case" + path.suffix, kind, data)


def run_on_cluster(client, blocks: Iterable[list], emit: Callable[[CaseResult], None],
                   root, policy_id, version, output, *, in_flight: deque | None = None,
                   window: int | None = None) -> int:
    """Decide the blocks on the cluster; `emit` each result in input order. Returns how many
    blocks were sent (a block sent again one case per task counts once)."""
    import os

    from distributed import wait

    from .state import _WORKER

    engine = os.environ.get("NECESSITY_ENGINE")
    mine = kb_digest(_WORKER["reasoner"].kb.file_hashes)
    theirs = client.run(_worker_state, root, policy_id, version, output, engine)
    other = sorted(addr for addr, digest in theirs.items() if digest != mine)
    if other:
        raise KnowledgeError(f"the knowledge base of worker(s) {', '.join(other)} differs from "
                             f"this one's (other files; see docs/cluster.md)")
    window = window or 2 * max(1, len(theirs)) + 1
    source = iter(blocks)
    order: deque = deque()  # [items, futures, results] per block, in input order
    count = 0

    def submit(items, one_each: bool = False):
        groups = [[i] for i in items] if one_each else [items]
        return [client.submit(_run_block, g, root, policy_id, version, output, mine, engine,
                              pure=False) for g in groups]

    while True:
        while len(order) < window:
            items = next(source, None)
            if items is None:
                break
            items = [shippable(i) for i in items]
            if in_flight is not None:
                in_flight.extend(items)
            order.append([items, submit(items), None])
            count += 1
        if not order:
            return count
        head = order[0]
        wait(head[1])
        results = []
        for future, group in zip(head[1], _groups(head)):
            if future.status == "finished":
                results.extend(future.result())
            elif len(group) > 1:  # send again one case per task: a failing case fails alone
                retry = submit(group, one_each=True)
                wait(retry)
                results.extend(_one(f, g[0]) for f, g in zip(retry, [[i] for i in group]))
            else:
                results.append(_one(future, group[0]))
        order.popleft()
        for result in results:
            if in_flight:
                in_flight.popleft()
            emit(result)


def _groups(entry) -> list[list]:
    items, futures, _ = entry
    return [items] if len(futures) == 1 else [[i] for i in items]


def _one(future, item) -> CaseResult:
    if future.status == "finished":
        return future.result()[0]
    exc = future.exception()
    if isinstance(exc, KnowledgeError):
        raise exc
    return CaseResult(str(item), error=f"{item}: the Dask task deciding it failed "
                                       f"({type(exc).__name__}: {exc}); no record written")
