"""Where a batch writes its results, one case at a time, in input order.

* `StoreSink`: the decision store (reasoner/store.py); each record is one atomic write, so a
  crash leaves every record written before it whole.
* `NdjsonSink`: a file of one determination JSON per line (the object `reasoner determine
  --format json` prints, keys sorted, one line each).
* `ParquetSink`: a Parquet file (pyarrow), one row per determination, flat columns: case id,
  policy, version, outcome, determination IRI, then one column per criterion of the policy
  (`criterion:<reference id>`, its verdict; empty where the version has no such criterion).

Files are written to a temporary file beside the target and renamed into place when the batch
ends (`commit`); a batch that stops part-way leaves the target as it was (`abort`). Rows are
written in groups of `ROW_GROUP` rows, so memory stays flat.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputError, ReasonerError
from .model import CaseResult

ROW_GROUP = 1_000
FIXED_COLUMNS = ("case_id", "policy", "version", "outcome", "iri")


class StoreSink:
    output = "store"
    target = "stored"

    def __init__(self, store):
        self.store = store

    def take(self, result: CaseResult) -> None:
        self.store.put(result.iri, result.record)

    def commit(self) -> None:
        if hasattr(self.store, "flush"):
            self.store.flush()

    def abort(self) -> None:
        self.commit()  # every record written is whole; keep them

    def discard(self) -> None:
        pass  # the store refused a record: nothing more is sent to it


class _FileSink:
    output = "json"
    target = "written"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            if self.path.is_dir():
                raise InputError("is a folder: give a file name for --out", source=str(path))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                       suffix=".tmp")
        except OSError as exc:
            raise InputError(f"cannot write the output here: {exc.strerror or exc} "
                             f"(folder {self.path.parent})", source=str(path)) from None
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> None:
        self._close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        try:
            self.abort()
        except OSError:
            pass

    def _close(self) -> None:
        raise NotImplementedError


class NdjsonSink(_FileSink):
    def __init__(self, path):
        super().__init__(path)
        self.handle = open(self.tmp, "w", encoding="utf-8", newline="\n")

    def take(self, result: CaseResult) -> None:
        self.handle.write(result.json + "\n")

    def _close(self) -> None:
        if not self.handle.closed:
            self.handle.close()


class ParquetSink(_FileSink):
    def __init__(self, path, criteria: list[str] | None = None):
        super().__init__(path)
        self.writer = None
        if criteria is not None:
            self._columns(criteria)

    def prepare(self, kb, policy_id: str) -> None:
        """The criterion columns: every criterion of every version of the policy."""
        self._columns(policy_criteria(kb, policy_id))

    def _columns(self, criteria: list[str]) -> None:
        import pyarrow as pa

        self.criteria = list(criteria)
        names = [*FIXED_COLUMNS, *(f"criterion:{ref}" for ref in self.criteria)]
        self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
        self.rows: dict[str, list] = {n: [] for n in names}

    def take(self, result: CaseResult) -> None:
        values = (result.case_id, result.policy, result.version, result.outcome, result.iri)
        for name, value in zip(FIXED_COLUMNS, values):
            self.rows[name].append(value)
        verdicts = result.verdicts or {}
        unknown = set(verdicts) - set(self.criteria)
        if unknown:  # the columns come from the policy's versions: this cannot happen
            raise ReasonerError(f"criteria without a column: {sorted(unknown)}")
        for ref in self.criteria:
            self.rows[f"criterion:{ref}"].append(verdicts.get(ref))
        if len(self.rows["case_id"]) >= ROW_GROUP:
            self._write()

    def _write(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.tmp), self.schema)
        if self.rows["case_id"]:
            self.writer.write_table(pa.table(self.rows, schema=self.schema))
            self.rows = {n: [] for n in self.rows}

    def _close(self) -> None:
        if getattr(self, "rows", None) is not None:
            self._write()  # the last rows; an empty batch still writes its columns
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.rows = None


def policy_criteria(kb, policy_id: str) -> list[str]:
    """The reference ids of the criteria of every version of the policy, in reference order:
    the Parquet file's criterion columns."""
    from ..model import reference_sort_key
    from ..vocab import NR

    pack = kb.pack(policy_id)
    refs = {str(pack.graph.value(c, NR.referenceId) or c)
            for v in pack.versions for c in v.criteria}
    return sorted(refs, key=reference_sort_key)


def open_sink(out: str | os.PathLike | None, store):
    """The sink for `--out FILE` (by its suffix: .ndjson/.jsonl or .parquet), else the store."""
    if out is None:
        return StoreSink(store)
    suffix = Path(out).suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return NdjsonSink(out)
    if suffix == ".parquet":
        return ParquetSink(out)  # its columns once the policy is loaded (`prepare`)
    raise InputError("--out must end in .ndjson, .jsonl or .parquet", source=str(out))
