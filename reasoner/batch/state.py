"""The state a batch worker keeps for its life (the loaded knowledge base, the policy), and
deciding one case or one block of cases with it.

A worker process builds this state once (a forked worker inherits it from the parent; a
spawned worker or a Dask worker builds it on its first block), never once per block.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path

from ..errors import ReasonerError
from ..store import record_ntriples, safe_iri
from .model import CaseResult, Inline

_WORKER: dict = {}
_LOADS: dict = {}  # knowledge-base loads in this process, kept when `_WORKER` is cleared


def knowledge_loads() -> int:
    """How many times this process loaded the knowledge base for a batch."""
    return _LOADS.get("n", 0)

OUTPUTS = ("store", "json")
"""What a worker returns per case: the record as N-Triples for a store, or the determination as
one line of JSON (with its verdicts) for NDJSON and Parquet files."""


def _init_worker(root: str | None, policy_id: str, version: str | None,
                 output: str = "store") -> None:
    # Ctrl-C goes to the whole process group: the parent handles it; workers just stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if not _WORKER:  # "spawn": nothing inherited, build the state here, once per worker
        _init_state(root, policy_id, version, output)


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


def _init_state(root: str | None, policy_id: str, version: str | None,
                output: str = "store") -> None:
    """Load the knowledge base (once per process and root) and select the policy."""
    import logging

    from ..api import Reasoner

    cached = _WORKER.get("reasoner")
    if cached is not None and _WORKER.get("root") == root:
        cached.kb.pack(policy_id)
        _WORKER.update(policy=policy_id, version=version, output=output)
        return
    # A version label with spaces makes rdflib warn on every determination IRI; the store
    # percent-encodes such IRIs (store.safe_iri), so the warning is noise in a batch.
    logging.getLogger("rdflib.term").setLevel(logging.ERROR)

    reasoner = Reasoner.load(root)
    reasoner.kb.pack(policy_id)  # an unknown policy fails here, once
    loads = _LOADS.get("n", 0) + 1  # how often this process loaded it (the cluster test)
    _LOADS["n"] = loads
    _WORKER.update(reasoner=reasoner, policy=policy_id, version=version, root=root,
                   output=output)
    freeze_state()


def paused_gc():
    """No cyclic garbage collection while a block is decided, one collection after it.

    A block allocates many small objects that live until its results are written (parsed case
    graphs, query solutions); the collector would scan them again and again as they age
    (bench/bench_batch.py: a quarter of a worker's time). Memory: one block's garbage at most,
    bounded by the block size."""
    from ..cache import paused_gc as paused

    return paused(collect_after=True)


def freeze_state() -> None:
    """Move every object alive now (the loaded knowledge base, the compiled packs) out of the
    collector's sight: it is kept for the process's life, and a forked worker then shares its
    pages instead of touching them at each collection (`gc.freeze`)."""
    gc.collect()
    gc.freeze()


def load_item(reasoner, item):
    """The case of a path or of an `Inline` case. An inline case is written to a private
    temporary file and read by the same loader as a case file, so that it passes the same
    limits and checks (reasoner/guard, the FHIR intake) and gets its case id the same way;
    messages name the stream's place instead of the temporary file."""
    if not isinstance(item, Inline):
        return reasoner.load_case(item)
    if item.kind == "error":  # a line the stream could not read (reasoner/batch/sources.py)
        from ..errors import InputError

        raise InputError(item.text)
    name = item.name or _fhir_name(item)
    folder = _WORKER.get("tmp")
    if folder is None or not os.path.isdir(folder):
        folder = _WORKER["tmp"] = tempfile.mkdtemp(prefix="reasoner-batch-")
    path = Path(folder) / name
    if isinstance(item.text, bytes):  # a case file's bytes, as read (cluster.py)
        path.write_bytes(item.text)
    else:
        path.write_text(item.text, encoding="utf-8")
    try:
        return reasoner.load_case(path)
    except ReasonerError as exc:
        raise type(exc)(str(exc).replace(str(path), item.label)) from None
    finally:
        path.unlink(missing_ok=True)


_SAFE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _fhir_name(item: Inline) -> str:
    """The file name of a FHIR case read from a stream: its Bundle `id` (the case id, as a
    file's stem is for a file), else `line-N`. Text that is not JSON fails here, by line."""
    from ..errors import InputError

    try:
        data = json.loads(item.text)
    except RecursionError:
        raise InputError(f"{item.label}: JSON nested too deep (over the nesting limit)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{item.label}: not JSON: {exc.msg} (column {exc.colno})") from None
    rid = data.get("id") if isinstance(data, dict) else None
    if isinstance(rid, str) and _SAFE_ID.match(rid) and rid.strip(".") \
            and rid not in ("case", "bundle"):  # those stems name a file by its folder
        return f"{rid}.json"
    return f"line-{item.label.rsplit(' ', 1)[-1]}.json"


def result_of(reasoner, d, case, path: str, start: float, output: str) -> CaseResult:
    """The CaseResult of a determination: its record (store) or its JSON line (files)."""
    if output == "json":
        return CaseResult(path, safe_iri(d.iri), d.outcome, seconds=time.perf_counter() - start,
                          json=json_line(d), case_id=d.case_id, policy=d.policy.id,
                          version=d.policy.version, verdicts=d.verdicts())
    nt = record_ntriples(reasoner.record_graph(d, case))
    return CaseResult(path, safe_iri(d.iri), d.outcome, nt, seconds=time.perf_counter() - start)


def json_line(d) -> str:
    """The determination as one line of JSON: the object `reasoner determine --format json`
    prints (render/json.py), keys sorted, without indentation."""
    return json.dumps(d.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def decide_one(item) -> CaseResult:
    """Decide one case (a path, or an `Inline` case) with the worker's reasoner."""
    start = time.perf_counter()
    path = str(item)
    r = _WORKER["reasoner"]
    try:
        case = load_item(r, item)
        d = r.determine(case, _WORKER["policy"], _WORKER["version"])
        return result_of(r, d, case, path, start, _WORKER.get("output", "store"))
    except ReasonerError as exc:
        return CaseResult(path, error=str(exc), seconds=time.perf_counter() - start)
    except RecursionError:  # input nested deeper than the recursion limit: the input's fault
        return CaseResult(path, error=f"{path}: input nested too deeply to read",
                          seconds=time.perf_counter() - start)
    except Exception as exc:  # one bad case must not stop the batch
        return CaseResult(path, error=f"{path}: internal error: {type(exc).__name__}: {exc}",
                          seconds=time.perf_counter() - start)


def block_runner():
    """The set-at-a-time runner (reasoner/engines/block.py) when the compiled engine is
    installed and takes the worker's policy, else None (cases are then decided one at a time
    inside each block)."""
    try:
        from ..engines import block
    except ImportError:
        return None
    return block.runner_for(_WORKER) if hasattr(block, "runner_for") else None


def decide_block(items: list) -> list[CaseResult]:
    """Decide a block of cases: set-at-a-time when the block runner is available, else one at
    a time. Used where nothing can stop a single case (a Dask task); the local pool streams
    per-case results instead so that its time limit per case holds."""
    import reasoner.batch as pkg  # tests replace `reasoner.batch.decide_one`

    runner = block_runner() if pkg.decide_one is decide_one else None
    if runner is not None:
        return runner(items)
    return [pkg.decide_one(item) for item in items]
