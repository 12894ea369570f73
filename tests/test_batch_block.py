"""Set-at-a-time (issue 9 point 3): a block of cases decided in one pyoxigraph store
(reasoner/engines/block.py) gives the same determinations, byte for byte, as one case at a time,
on every case of cases/; and the batch takes blocks, not cases."""

from __future__ import annotations

import pytest

from reasoner.batch import _WORKER, _init_state, decide_one
from reasoner.case import collect_cases
from reasoner.engines.block import plan_for, runner_for, scoped

from .conftest import CASES

EVERY_CASE = [str(p) for p in collect_cases([CASES])]


# every case under the LCD; under clinical-snrb (whose pack has a trace query that runs per
# case) every fourth, to keep the suite's time
@pytest.mark.parametrize("policy, cases", [("lcd-l39240", EVERY_CASE),
                                           ("clinical-snrb", EVERY_CASE[::4])])
def test_a_block_decides_every_case_as_one_at_a_time(policy, cases):
    assert len(EVERY_CASE) >= 110 and len(cases) >= 28
    _init_state(None, policy, None, "json")
    run = runner_for(_WORKER)
    assert run is not None, "the compiled engine decides under this pack"
    alone = [decide_one(p) for p in cases]
    blocks = []
    for start in range(0, len(cases), 40):  # blocks of 40, the last shorter
        blocks += run(cases[start:start + 40])
    assert len(blocks) == len(alone) == len(cases)
    differ = [a.path for a, b in zip(alone, blocks) if (a.json, a.error) != (b.json, b.error)]
    assert not differ, f"{len(differ)} case(s) differ: {differ[:5]}"
    assert all(a.json for a in alone)  # every case decided (none compared as two errors)
    plan = plan_for(_WORKER["reasoner"].determiner.program(_WORKER["reasoner"].kb.pack(policy)))
    # most queries run once per block; the ones that cannot be scoped are named
    assert sum(1 for _, text in plan.constraints if text) >= len(plan.constraints) - 1
    assert len(plan.per_case) < len(plan.rules) + len(plan.constraints) + len(plan.traces)
    assert any(text is None for _, text in plan.rules)  # rules with subqueries run per case
    if policy == "clinical-snrb":  # the per-case fallback of a trace query was exercised too
        assert any(text is None for _, text in plan.traces)


def test_a_bad_case_in_a_block_fails_alone_with_its_own_error(tmp_path):
    bad = tmp_path / "bad-case"
    bad.mkdir()
    (bad / "case.ttl").write_text("@prefix nr: <https://w3id.org/necessity/ontology#> .\n"
                                  "this is not turtle .\n")
    _init_state(None, "lcd-l39240", None, "json")
    items = [EVERY_CASE[0], str(bad), EVERY_CASE[1]]
    results = runner_for(_WORKER)(items)
    assert [r.error is None for r in results] == [True, False, True]
    assert results[1].error == decide_one(str(bad)).error
    assert results[0].json == decide_one(EVERY_CASE[0]).json


@pytest.mark.parametrize("text, safe", [
    ("SELECT $this WHERE { $this a ?t . FILTER NOT EXISTS { $this ?p ?o } }", True),
    ("SELECT $this ?v WHERE { { $this ?p ?v } UNION { ?x ?p ?v } }", True),
    ("SELECT $this ?v WHERE { { BIND($this AS ?v) } UNION { ?x ?p ?v } }", False),
    ("SELECT $this ?v WHERE { { ?x ?p ?v OPTIONAL { $this ?q ?v } } }", False),
    ("SELECT $this ?v WHERE { ?x ?p ?v OPTIONAL { $this ?q ?v } }", True),
    ("SELECT $this (COUNT(?v) AS ?n) WHERE { $this ?p ?v } GROUP BY $this", False),
    ("SELECT $this ?v WHERE { { SELECT $this ?v WHERE { $this ?p ?v } } }", False),
    ("SELECT $this ?v WHERE { $this ?p ?v } LIMIT 1", False),
])
def test_only_queries_whose_this_keeps_its_meaning_are_scoped(text, safe):
    assert (scoped(text) is not None) == safe
