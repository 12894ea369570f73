"""Decide many cases under one policy, in blocks, on every core or on a Dask cluster.

Cases come from files, folders, glob patterns or NDJSON on standard input (`sources`); workers
(processes forked from the parent, which loaded the knowledge base once, or Dask workers) take
a block of cases at a time (`pool`, `cluster`) and return each case's decision record or
determination JSON (`state`); the parent process is the only writer, to a decision store or an
NDJSON or Parquet file (`sinks`), in input order (`runner`). Each case has a time limit
(`case_timeout`): a case that exceeds it fails alone, named in the summary, and its worker is
replaced. Set-at-a-time deciding of a block: reasoner/engines/block.py.

    from reasoner.batch import run_batch
    from reasoner.case import collect_cases
    from reasoner.store import open_store
    with open_store("decisions.oxigraph") as store:
        summary = run_batch(collect_cases(["cases"]), "lcd-l39240", store, workers=2)
"""

from . import pool
from .model import NAMED_NOT_STORED, BatchSummary, CaseResult, Inline
from .runner import DEFAULT_BLOCK_SIZE, DEFAULT_CASE_TIMEOUT, blocks_of, run_batch
from .state import _WORKER, _init_state, _init_worker, decide_block, decide_one

__all__ = ["BatchSummary", "CaseResult", "DEFAULT_BLOCK_SIZE", "DEFAULT_CASE_TIMEOUT", "Inline",
           "NAMED_NOT_STORED", "blocks_of", "decide_block", "decide_one", "pool", "run_batch",
           "_WORKER", "_init_state", "_init_worker"]
