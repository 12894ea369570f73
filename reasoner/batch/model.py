"""What a batch passes around: a case to decide (a path, or a case read from a stream), what a
worker returns for it, and the summary of the whole run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import redact

#: How many not-stored cases a summary names one by one before it counts the rest.
NAMED_NOT_STORED = 10


@dataclass(frozen=True)
class Inline:
    """A case read from a stream rather than a file: one line of NDJSON on standard input (a
    FHIR R4 Bundle), or a generated Turtle case. `label` names it in messages ("-:line 5");
    `name` is the file name it would have (its stem is the case id when the case names none);
    `kind` is "fhir" (JSON text), "turtle", or "error" (`text` is why it cannot be read)."""

    label: str
    name: str
    kind: str
    text: str | bytes

    def __str__(self) -> str:  # summaries and progress lines name the case by its label
        return self.label


@dataclass
class CaseResult:
    """What a worker returns for one case: the record (for a store) or the determination as
    JSON (for NDJSON and Parquet files), or the one-line error."""

    path: str
    iri: str | None = None
    outcome: str | None = None
    record: str | None = None  # N-Triples, when the batch writes to a store
    error: str | None = None
    seconds: float = 0.0
    timed_out: bool = False
    json: str | None = None  # one line of JSON, when the batch writes a file
    case_id: str | None = None
    policy: str | None = None
    version: str | None = None
    verdicts: dict | None = None  # criterion reference id -> verdict


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
    target: str = "stored"  # "stored" (a decision store) or "written" (an output file)
    blocks: int = 0  # blocks of cases handed to workers
    where: str | None = None  # "a Dask cluster at ..." when not this machine's processes

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"
        verb = "decided and stored" if self.target == "stored" else "decided and written"
        out = [f"{self.written} of {self.total} cases {verb} ({counts})",
               f"{self.seconds:.1f} s, {self.rate:.1f} cases/s on "
               + (self.where or f"{self.workers} worker(s)")]
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
            out.append(f"interrupted: the records above are {self.target}, the rest were not "
                       f"decided")
        return [redact(line) for line in out]
