"""The disk cache of the warmed state (reasoner/cache.py, reasoner/warm.py) is never a reason
for a wrong result: whatever state the cache folder is in (empty, valid, corrupt, truncated,
stale, foreign, unwritable, filled by two builders at once), `reasoner determine` prints
byte for byte what it prints without the cache. Each test runs the real command in a
subprocess with its own cache folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reasoner import cache

ROOT = Path(__file__).resolve().parent.parent
SEED = ["determine", "cases/seed-l5-snrb", "--policy", "clinical-snrb", "--format", "json"]


def run(args, cache_dir=None, home=None, off=False, seed="0", cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NECESSITY_")}
    env["PYTHONHASHSEED"] = seed  # a build and a read under different hash seeds
    if cache_dir is not None:
        env["NECESSITY_CACHE_DIR"] = str(cache_dir)
    if off:
        env["NECESSITY_CACHE"] = "off"
    if home is not None:
        env["NECESSITY_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "reasoner", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


@pytest.fixture(scope="module")
def uncached() -> str:
    return ok(run(SEED, off=True))


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("kb-*.pickle"))


def readable(path: Path) -> bool:
    key = path.name.split("-", 2)[2].split(".", 1)[0]
    shared = None if path.name.count(".") == 1 else _Shared()
    return cache.read(path, key, shared) is not None


class _Shared(dict):
    """Stands for the core's objects when a section is read on its own."""

    def __missing__(self, token):
        return token


@pytest.fixture(scope="module")
def built(tmp_path_factory, uncached) -> Path:
    """A cache folder after one run: a core file and one section (the seed's pack)."""
    folder = tmp_path_factory.mktemp("cache")
    assert ok(run(SEED, folder, seed="1")) == uncached
    return folder


def test_cold_build_then_warm_read_give_the_uncached_output(built, uncached):
    made = files(built)
    assert len(made) == 2  # the core and the clinical-snrb section
    assert all(readable(p) for p in made)
    assert {oct(p.stat().st_mode & 0o777) for p in made} == {"0o600"}
    assert oct(built.stat().st_mode & 0o777) == "0o700"
    assert ok(run(SEED, built, seed="2")) == uncached
    assert files(built) == made


def test_each_engine_has_its_own_sections(tmp_path, built, uncached):
    """The pySHACL engine's part of a pack (parsed shapes, prepared queries) is a section of
    its own beside the compiled engine's; both read back to the same determination."""
    folder = tmp_path / "cache"
    shutil.copytree(built, folder)
    before = set(p.name for p in files(folder))
    args = [*SEED, "--engine", "pyshacl"]
    assert ok(run(args, folder, seed="5")) == uncached  # builds the pySHACL section
    assert len(set(p.name for p in files(folder)) - before) == 1
    assert ok(run(args, folder, seed="6")) == uncached  # reads it
    assert ok(run(args, off=True)) == uncached


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "wrong-payload", "foreign"])
def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path, built, uncached, damage):
    folder = tmp_path / "cache"
    shutil.copytree(built, folder)
    folder.chmod(0o700)
    for path in files(folder):
        data = path.read_bytes()
        if damage == "flip":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        elif damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = b""
        elif damage == "wrong-payload":
            # a well-formed file whose payload is not a reasoner, or does not unpickle
            key = path.name.split("-", 2)[2].split(".", 1)[0]
            payload = b"not a pickle" if path.name.count(".") > 1 else cache.dumps(["x"])
            data = cache._header(key, payload) + payload
        path.write_bytes(data)
        if damage == "foreign":
            path.chmod(0o666)  # writable by others: never unpickled
    assert ok(run(SEED, folder)) == uncached
    assert files(folder) and all(readable(p) for p in files(folder))
    assert {oct(p.stat().st_mode & 0o777) for p in files(folder)} == {"0o600"}


def test_a_changed_source_file_rebuilds(tmp_path, built):
    home = tmp_path / "home"
    for name in ("ontology", "knowledge", "shapes"):
        shutil.copytree(ROOT / name, home / name)
    folder = tmp_path / "cache"
    case = str(ROOT / "cases/seed-l5-snrb")
    args = ["determine", case, "--policy", "clinical-snrb", "--format", "json"]
    before = ok(run(args, folder, home=home))
    old = files(folder)
    policy = home / "shapes/clinical-snrb/policy.ttl"
    text = policy.read_text(encoding="utf-8")
    assert "as applied in the seed determination" in text
    policy.write_text(text.replace("as applied in the seed determination",
                                   "as applied in a changed copy"), encoding="utf-8")
    after = ok(run(args, folder, home=home))
    assert after != before and "as applied in a changed copy" in after
    assert after == ok(run(args, home=home, off=True))
    assert not set(old) & set(files(folder))  # the stale files went


def test_two_builders_at_once(tmp_path, uncached):
    folder = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NECESSITY_")}
    env["NECESSITY_CACHE_DIR"] = str(folder)
    procs = [subprocess.Popen([sys.executable, "-m", "reasoner", *SEED], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out for out, _ in outputs] == [uncached, uncached]
    assert len(files(folder)) == 2 and all(readable(p) for p in files(folder))
    assert not list(folder.glob(".*.tmp"))
    assert ok(run(SEED, folder)) == uncached


def test_off_and_unwritable(tmp_path, uncached):
    folder = tmp_path / "cache"
    folder.mkdir()
    assert ok(run(SEED, folder, off=True)) == uncached
    assert not list(folder.iterdir())
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")
    assert ok(run(SEED, blocked)) == uncached  # cannot create the folder: runs uncached


def test_cached_decisions_equal_uncached_on_a_sample_of_cases(tmp_path):
    """Every fifth case of the repo, under every pack its expected.json names."""
    cases = sorted(p.name for p in (ROOT / "cases").iterdir() if (p / "expected.json").exists())
    sample = cases[::5]
    assert len(sample) == (len(cases) + 4) // 5 and len(sample) >= 20
    script = (
        "import sys, json\n"
        "from reasoner.api import Reasoner\n"
        "from reasoner.render.json import render_json_all\n"
        "r = Reasoner.load()\n"
        "for name in sys.argv[1:]:\n"
        "    case = r.load_case('cases/' + name)\n"
        "    expected = json.load(open('cases/' + name + '/expected.json'))['expected']\n"
        "    for policy in sorted(expected):\n"
        "        print(render_json_all(r.determine_all(case, policy)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NECESSITY_")}

    def decide(**extra):
        proc = subprocess.run([sys.executable, "-c", script, *sample], cwd=ROOT,
                              env={**env, **extra}, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    folder = str(tmp_path / "cache")
    reference = decide(NECESSITY_CACHE="off")
    assert reference.count('"outcome"') >= len(sample)  # one determination per case and pack
    assert decide(NECESSITY_CACHE_DIR=folder, PYTHONHASHSEED="3") == reference  # builds
    assert decide(NECESSITY_CACHE_DIR=folder, PYTHONHASHSEED="4") == reference  # reads
