"""Shared fixtures: the knowledge base is loaded once per test session (per xdist worker), and
the session's disk cache is warmed once, before any test runs a command in a subprocess.

With xdist (`scripts/test` runs `pytest -n 2`) the tests are scheduled so that the two workers
finish together: tests that share an expensive fixture (the decided corpus, the cache folders
of tests/test_cache.py, a LocalCluster, ...) run on one worker, which builds it once, and the
longest work is handed out first (see `LONG_FIRST`)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"


_CACHE_DIR_MADE: list[str] = []
#: a file next to the session's cache folder: one process at a time warms the cache
_WARM_LOCK = "NECESSITY_TEST_WARM_LOCK"


def pytest_configure(config):
    """The session's own disk cache (reasoner/cache.py), shared by the xdist workers (they
    inherit the variable): tests never read or fill the user's cache, and the first use in
    the session builds it. Tests of the cache itself use their own folders."""
    if not os.environ.get("NECESSITY_CACHE_DIR"):
        folder = tempfile.mkdtemp(prefix="necessity-cache-")
        os.environ["NECESSITY_CACHE_DIR"] = folder
        os.environ[_WARM_LOCK] = folder + ".lock"
        _CACHE_DIR_MADE.append(folder)


def pytest_unconfigure(config):
    for folder in _CACHE_DIR_MADE:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder + ".lock").unlink(missing_ok=True)
    for path in _GROUPS_MADE:
        Path(path).unlink(missing_ok=True)


@contextmanager
def _one_process_at_a_time():
    lock = os.environ.get(_WARM_LOCK)
    if not lock:
        yield
        return
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session", autouse=True)
def reasoner():
    """The checkout's reasoner, every pack ready. The first worker builds the disk cache's
    core and every pack's section (reasoner/warm.py) while the other waits, then reads them:
    the knowledge base is built once per session, and every `reasoner` command a test runs in
    a subprocess starts from the warm cache, as a user's second command does."""
    from reasoner.api import Reasoner

    with _one_process_at_a_time():
        loaded = Reasoner.load(ROOT)
        for policy_id in sorted(loaded.kb.packs):
            loaded._ready(policy_id)
    return loaded


def turtle_cases() -> list[Path]:
    return sorted(CASES.glob("*/case.ttl"))


from .store_corpus import corpus  # noqa: E402,F401  (session fixture of the store tests)


# ---------------------------------------------------------------------- xdist scheduling
#
# `pytest -n 2` (scripts/test) schedules with `LongFirst` below: xdist's own loadgroup cannot be
# used, its worker renames each test `<id>@<group>` through an attribute pytest 9 no longer
# reads, so the workers tell the controller each test's group through a file instead.

#: test file -> group: its tests share a module fixture that is slow to build (subprocess runs
#: without cache, a planted project checked, a Dask LocalCluster, a `reasoner serve` process
#: with its store), so they run on one worker, which builds it once
FILE_GROUPS = {
    "test_cache.py": "cache-folders",
    "test_authoring_check.py": "authoring-check",
    "test_authoring_test_diff.py": "authoring-test-diff",
    "test_batch_cluster.py": "dask-cluster",
    "test_server.py": "sparql-server",
    "test_server_hardening.py": "server-hardening",
    "test_server_security.py": "server-security",
    "test_service_hooks.py": "service-hooks",
    "test_service_pas.py": "service-pas",
    "test_dtr_server.py": "dtr-server",
}
#: session fixture -> group: every test that uses it runs on the worker that built it
FIXTURE_GROUPS = {"corpus": "corpus"}

#: Handed out first, in this order (longest first, as `--durations` measured them; a group or
#: the start of a node id); the rest follow in collection order, one test at a time. The two
#: workers then finish within a short test of each other, instead of one idling while the
#: other runs a long test it took last.
LONG_FIRST = (
    "corpus",
    "cache-folders",
    "tests/test_ops.py::test_batch_over_the_corpus_and_hostile_cases",
    "authoring-check",
    "server-security",
    "tests/test_batch_block.py::test_a_block_decides_every_case_as_one_at_a_time",
    "dask-cluster",
    "sparql-server",
    "server-hardening",
    "authoring-test-diff",
    "tests/test_ops.py::test_a_case_over_the_time_limit",
    "tests/test_ops.py::test_cli_batch_names_the_timed_out_case",
    "tests/test_batch_streams.py::test_a_case_over_the_time_limit",
    "dtr-server",
    "service-pas",
    "service-hooks",
    "tests/test_knowledge.py::test_icd_file_is_current",
)
_GROUPS_FILE = "necessity_groups"


def group_of(item) -> str | None:
    group = FILE_GROUPS.get(item.path.name)
    for fixture, name in FIXTURE_GROUPS.items():
        if fixture in getattr(item, "fixturenames", ()):
            group = name
    return group


def pytest_collection_modifyitems(config, items):
    """On an xdist worker: write each grouped test's group for the controller's scheduler."""
    path = getattr(config, "workerinput", {}).get(_GROUPS_FILE)
    if path:
        groups = {item.nodeid: group for item in items if (group := group_of(item))}
        tmp = f"{path}.{os.getpid()}"
        Path(tmp).write_text(json.dumps(groups, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)  # both workers write the same; a reader sees one whole file


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """`-n N` without `--dist` schedules by group, longest first (`LongFirst`)."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "no":
        config.option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    if node.config.option.dist == "loadgroup":
        if not _GROUPS_MADE:
            handle, path = tempfile.mkstemp(prefix="necessity-test-groups-", suffix=".json")
            os.close(handle)
            _GROUPS_MADE.append(path)
        node.workerinput[_GROUPS_FILE] = _GROUPS_MADE[0]


_GROUPS_MADE: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.option.dist != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    def rank(scope: str) -> int:
        return next((i for i, name in enumerate(LONG_FIRST) if scope.startswith(name)),
                    len(LONG_FIRST))

    class LongFirst(LoadScopeScheduling):
        """xdist's scheduling by scope, a scope being a group (`FILE_GROUPS`,
        `FIXTURE_GROUPS`) or else one test; the scopes queued longest first (`LONG_FIRST`),
        the rest in collection order."""

        _groups: dict[str, str] | None = None
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:  # written by the workers before they reported collection
                text = Path(_GROUPS_MADE[0]).read_text(encoding="utf-8") if _GROUPS_MADE else ""
                self._groups = json.loads(text) if text else {}
            return self._groups.get(nodeid, nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self._ordered:  # the queue is whole before its first unit is handed out
                units = sorted(self.workqueue.items(), key=lambda unit: rank(unit[0]))
                self.workqueue.clear()
                self.workqueue.update(units)
                self._ordered = True
            super()._assign_work_unit(node)

    config.option.loadscopereorder = False
    return LongFirst(config, log)
