"""The decided corpus shared by the store tests: every case with an expected.json batched into a
fresh embedded store once per session (the `corpus` fixture, registered in conftest.py)."""

from __future__ import annotations

import json
import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from rdflib import Graph, URIRef

from reasoner.batch import run_batch
from reasoner.store import EmbeddedStore
from reasoner.vocab import NR

from .conftest import CASES, ROOT

QUERIES = ROOT / "queries"
MINI = ROOT / "tests" / "fixtures" / "mini"
VERDICT = {NR.Met: "met", NR.Unmet: "unmet", NR.Missing: "missing",
           NR.NotApplicable: "not-applicable"}
OUTCOME = {NR.Approved: "approved", NR.Denied: "denied", NR.Pended: "pended"}


# ---------------------------------------------------------------------- the corpus

def expectations() -> dict[str, dict[Path, dict]]:
    """policy id -> {case folder: {"outcome", "criteria"}} from cases/*/expected.json."""
    out: dict[str, dict[Path, dict]] = defaultdict(dict)
    paths = sorted(CASES.glob("*/expected.json"))
    limit = int(os.environ.get("STORE_TEST_LIMIT") or 0)  # developers only: a quicker partial run
    for path in paths[:limit] if limit else paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        for policy, exp in data.get("expected", {}).items():
            out[policy][path.parent] = exp
    return dict(out)


@dataclass
class Decided:
    policy: str
    case_dir: Path
    iri: str
    record: Graph
    expected: dict

    @property
    def node(self) -> URIRef:
        return URIRef(self.iri)

    @property
    def record_outcome(self) -> str:
        return OUTCOME[self.record.value(self.node, NR.outcome)]

    @property
    def record_verdicts(self) -> dict[str, str]:
        g = self.record
        return {str(g.value(r, NR.referenceId)): VERDICT[g.value(r, NR.verdict)]
                for r in g.objects(self.node, NR.hasCriterionResult)}

    @property
    def agrees(self) -> bool:
        v = self.record_verdicts
        return (self.record_outcome == self.expected["outcome"]
                and all(v.get(ref) == s for ref, s in self.expected["criteria"].items()))

    # The answers the queries must give: expected.json's (the record's while they differ).
    @property
    def outcome(self) -> str:
        return self.expected["outcome"] if self.agrees else self.record_outcome

    @property
    def verdicts(self) -> dict[str, str]:
        if not self.agrees:
            return self.record_verdicts
        return {**self.record_verdicts, **self.expected["criteria"]}

    @property
    def service_date(self) -> date | None:
        value = self.record.value(self.node, NR.serviceDate)
        return date.fromisoformat(str(value)) if value is not None else None

    @property
    def version(self) -> URIRef:
        return self.record.value(self.node, NR.underPolicyVersion)


@dataclass
class Corpus:
    store: EmbeddedStore
    decided: list[Decided]
    errors: list[str]
    collected: dict[str, int]
    reasoner: object

    def records_nt(self) -> dict[str, str]:
        return {d.iri: d.record.serialize(format="nt") for d in self.decided}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, reasoner):
    """Batch every case with an expected.json under each policy it names into a fresh store."""
    exp = expectations()
    store = EmbeddedStore(str(tmp_path_factory.mktemp("store") / "decisions"))
    decided, errors, collected = [], [], {}
    for policy in sorted(exp):
        if policy not in reasoner.kb.packs:
            continue
        folders = sorted(exp[policy])
        collected[policy] = len(folders)
        results = []
        summary = run_batch(folders, policy, store, workers=2, root=ROOT,
                            progress=results.append)
        assert summary.total == len(folders) and len(results) == len(folders)
        errors += summary.errors
        for r in results:
            if r.error:
                continue
            folder = Path(r.path)
            decided.append(Decided(policy, folder, r.iri, Graph().parse(data=r.record, format="nt"),
                                   exp[policy][folder]))
    store.ensure_kb(ROOT)
    yield Corpus(store, decided, errors, collected, reasoner)
    store.close()


def rows_of(store, name: str) -> list[dict[str, str]]:
    return store.select_rows((QUERIES / name).read_text(encoding="utf-8"), source=name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
