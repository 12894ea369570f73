"""`--cluster` (issue 9 point 4): the same blocks on Dask distributed, over the real scheduler
protocol (a LocalCluster of 2 worker processes on loopback), equal to the single-process run;
each worker loads the knowledge base once, not once per block. And `reasoner diff` on the batch
machinery, over case folders or over the cases a store has recorded."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reasoner.batch import run_batch
from reasoner.batch.sinks import NdjsonSink
from reasoner.cli import main

from .conftest import CASES, ROOT

POLICY = "lcd-l39240"
OTHER = "commercial-esi-example"
# Turtle and FHIR cases (every 9th case folder: a spread of outcomes), in name order
PICK = sorted(p for p in CASES.iterdir() if p.is_dir())[::9]


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, protocol="tcp")
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_the_cluster_run_equals_the_single_process_run(tmp_path, client):
    assert len(PICK) >= 12
    paths = [str(p) for p in PICK]
    local, remote = tmp_path / "local.ndjson", tmp_path / "cluster.ndjson"
    a = run_batch(paths, POLICY, NdjsonSink(local), workers=1, root=ROOT, block_size=4)
    b = run_batch(paths, POLICY, NdjsonSink(remote), root=ROOT, block_size=4, cluster=client)
    assert a.written == b.written == len(paths) and not a.errors and not b.errors
    assert b.blocks == -(-len(paths) // 4)  # blocks of 4, not cases, were sent
    assert local.read_bytes() == remote.read_bytes()
    # both worker processes took part, and each loaded the knowledge base once
    from reasoner.batch.state import knowledge_loads

    loads = client.run(knowledge_loads)
    assert len(loads) == 2 and all(n == 1 for n in loads.values()), loads
    again = run_batch(paths[:4], POLICY, NdjsonSink(tmp_path / "again.ndjson"), root=ROOT,
                      block_size=1, cluster=client)
    assert again.written == 4
    assert all(n == 1 for n in client.run(knowledge_loads).values())  # not reloaded per block


def test_diff_over_a_store_equals_diff_over_its_cases(tmp_path):
    cases = [str(p) for p in PICK[:6]]
    store = tmp_path / "store"
    runner = CliRunner()
    stored = runner.invoke(main, ["batch", *cases, "--policy", POLICY, "--store", str(store),
                                  "--no-progress"])
    assert stored.exit_code == 0, stored.output
    over_cases = runner.invoke(main, ["diff", *cases, "--from", POLICY, "--to", OTHER,
                                      "--format", "json", "-j", "2", "--block-size", "2"])
    over_store = runner.invoke(main, ["diff", "--store", str(store), "--from", POLICY,
                                      "--to", OTHER, "--format", "json"])
    assert over_cases.exit_code == 0 and over_store.exit_code == 0, over_store.output
    a, b = json.loads(over_cases.stdout), json.loads(over_store.stdout)
    assert len(a["cases"]) == 6
    assert sorted(a["cases"], key=lambda c: c["case"]) == sorted(b["cases"],
                                                                key=lambda c: c["case"])
    assert a["shape_changes"] == b["shape_changes"]
