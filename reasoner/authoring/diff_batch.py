"""`reasoner diff` on the batch machinery (reasoner/batch): the cases are decided in blocks, on
every core or on a Dask cluster, once under each side; the report is the one `run_diff` makes
(reasoner/authoring/diff.py). The cases may be paths, or the cases a decision store recorded
(`reasoner.batch.sources.store_cases`: a record keeps its case's facts, docs/store.md).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..errors import InputError
from ..model import reference_sort_key
from .diff import CaseDiff, DiffReport, _report, resolve_refs


def _case_diff(p1, p2, a, b) -> CaseDiff:
    """One case's diff from two (case id, version, outcome, verdicts) summaries."""
    va, vb = a.verdicts, b.verdicts
    changed = [{"ref": ref, "from": va.get(ref), "to": vb.get(ref)}
               for ref in sorted(set(va) | set(vb), key=reference_sort_key) if va.get(ref) != vb.get(ref)]
    return CaseDiff(a.case_id, f"{p1}@{a.version}", f"{p2}@{b.version}", a.outcome, b.outcome,
                    changed)


class _Collect:
    """A batch sink (reasoner/batch/sinks.py) keeping what a diff needs of each determination."""

    output = "json"
    target = "written"

    def __init__(self):
        self.results = []

    def take(self, result) -> None:
        result.json = None  # the diff needs the verdicts, not the whole determination
        self.results.append(result)

    def commit(self) -> None:
        pass

    abort = discard = commit


def run_diff_batch(reasoner, cases: Callable[[], Iterable], from_ref: str, to_ref: str, *,
                   workers: int | None = None, block_size: int | None = None, cluster=None,
                   case_timeout: float | None = None, progress=None) -> DiffReport:
    """`run_diff` on the batch machinery (reasoner/batch): the cases are decided in blocks on
    every core, or on a Dask cluster (`cluster`, a `distributed.Client`), once under each side.
    `cases()` gives the cases afresh for each side: paths, or `Inline` cases such as the ones
    recorded in a store (`reasoner.batch.sources.store_cases`). A case that cannot be decided
    is bad input (InputError naming it), as in `run_diff`. `progress(done, total)` is called
    after each case is compared (decided under both sides)."""
    from ..batch import DEFAULT_BLOCK_SIZE, DEFAULT_CASE_TIMEOUT, run_batch

    kb = reasoner.kb
    (p1, v1, pack1), (p2, v2, pack2) = resolve_refs(kb, from_ref, to_ref)
    from ..batch import _WORKER

    if _WORKER.get("reasoner") is None:  # the batch reuses this knowledge base, loaded once
        _WORKER.update(reasoner=reasoner, root=str(kb.root))
    sides: list[list] = []

    def compared(_result) -> None:  # a case is compared once decided under the second side
        if progress and len(sides) == 1:
            compared.done += 1
            progress(compared.done, len(sides[0]))

    compared.done = 0
    for policy, version in ((p1, v1), (p2, v2)):
        sink = _Collect()
        summary = run_batch(cases(), policy, sink, version=version, workers=workers,
                            root=str(kb.root), block_size=block_size or DEFAULT_BLOCK_SIZE,
                            cluster=cluster, progress=compared,
                            case_timeout=DEFAULT_CASE_TIMEOUT if case_timeout is None
                            else case_timeout)
        if summary.errors:
            raise InputError(summary.errors[0])
        if summary.interrupted:
            raise KeyboardInterrupt
        sides.append(sink.results)
    a_side, b_side = sides
    if not a_side:
        raise InputError("no cases to compare")
    cases_out = [_case_diff(p1, p2, a, b) for a, b in zip(a_side, b_side)]
    used = {(a.version, b.version) for a, b in zip(a_side, b_side)}
    return _report(from_ref, to_ref, pack1, v1, pack2, v2, cases_out, used)
