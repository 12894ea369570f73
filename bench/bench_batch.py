"""Batch throughput and memory (issue 9 points 3, 4 and 6): `reasoner batch` in blocks.

Workload: generated cases. The first `--distinct` (default 560) come from
`bench/generated.py` (copies of the Turtle cases of cases/ under their own case IRIs, every
other one missing one fact, so verdicts vary); after those the stream repeats them under new
case ids (`gen-00560`, ...), so that generating 100,000 cases costs the parent process string
copies, not 100,000 Turtle parses. Cases are sent to the batch as Turtle text (`Inline`), read
lazily from the generator; results go to an NDJSON file (to keep the store out of it).

Reports, same cases for every figure:

* cases/s with 1 worker process and with 2 (`run_batch`, blocks of `--block-size`), and
  their ratio; and the CPU time per case of the whole process tree (this process and its
  workers), which does not depend on what else the machine runs;
* cases/s on a Dask LocalCluster of 2 worker processes (after a warm-up block that loads the
  knowledge base on each worker);
* peak resident memory of the whole process tree (the batch process and its workers, sampled
  every 0.2 s from /proc: the sum of RSS, and of PSS, which counts the pages forked workers
  share once) at `--rss-small` and at `--rss-large` cases (default 1,000 and
  100,000; 0 skips the large run, which takes long), each run in a fresh process.

    python bench/bench_batch.py                        # everything, 100,000-case RSS run included
    python bench/bench_batch.py --n 600 --rss-large 0  # quicker

`measure(...)` returns the figures as a dict (the README's bench table is made from it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

POLICY = "lcd-l39240"


def case_stream(n: int, distinct: int = 560, seed: int = 7):
    """`n` generated cases as Turtle `Inline` cases (module docstring), lazily."""
    from generated import generate_cases

    from reasoner.batch import Inline
    from reasoner.vocab import CASE_BASE

    texts = []
    for i, case in enumerate(generate_cases(min(n, distinct), seed=seed, root=ROOT)):
        text = case.graph.serialize(format="turtle")
        texts.append(text)
        yield Inline(f"gen-{i:05d}", f"gen-{i:05d}.ttl", "turtle", text)
    for i in range(len(texts), n):
        j = i % len(texts)
        text = texts[j].replace(f"{CASE_BASE}gen-{j:05d}/", f"{CASE_BASE}gen-{i:05d}/")
        yield Inline(f"gen-{i:05d}", f"gen-{i:05d}.ttl", "turtle", text)


def _stream_list(n: int, distinct: int) -> list:
    """The same cases, materialised (small n only): every timed run gets identical input."""
    return list(case_stream(n, distinct))


def _batch(items, workers: int | None, block_size: int, cluster=None) -> dict:
    from reasoner.batch import run_batch
    from reasoner.batch.sinks import NdjsonSink

    before = os.times()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.ndjson"
        summary = run_batch(items, POLICY, NdjsonSink(out), workers=workers, root=str(ROOT),
                            block_size=block_size, cluster=cluster, case_timeout=600)
        lines = sum(1 for _ in out.open())
    after = os.times()
    if summary.errors:
        raise SystemExit(f"{len(summary.errors)} case(s) failed: {summary.errors[:3]}")
    result = {"cases": summary.written, "seconds": round(summary.seconds, 2),
              "cases_per_s": round(summary.rate, 1), "lines": lines}
    if cluster is None:  # CPU of this process and of its (joined) worker processes
        cpu = sum(a - b for a, b in zip(after[:4], before[:4]))
        result["cpu_ms_per_case"] = round(1000 * cpu / max(summary.written, 1), 1)
    return result


def _tree_memory(root_pid: int) -> tuple[int, int]:
    """Resident memory (bytes) of a process and all its descendants, from /proc: the sum of
    their RSS (pages shared by forked workers counted in each), and the sum of their PSS
    (shared pages divided among the processes sharing them)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, pss, todo = 0, 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        pss += _pss(pid)
        todo.extend(children.get(pid, []))
    return total, pss


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss(n: int, block_size: int, distinct: int, workers: int = 2) -> dict:
    """Run a batch of `n` generated cases in a fresh process; sample its tree's RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--block-size",
           str(block_size), "--distinct", str(distinct), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = peak_pss = 0
    while proc.poll() is None:
        rss, pss = _tree_memory(proc.pid)
        peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        time.sleep(0.2)
    out = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"the {n}-case run failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(peak / 2 ** 20, 1)
    result["peak_pss_mb"] = round(peak_pss / 2 ** 20, 1)
    return result


def measure(n: int = 600, block_size: int = 200, distinct: int = 560, rss_small: int = 1000,
            rss_large: int = 100_000, cluster: bool = True) -> dict:
    """Every figure of the module docstring, as a dict."""
    from reasoner.batch import _init_state

    _init_state(str(ROOT), POLICY, None, "json")  # the knowledge base loaded before any clock
    items = _stream_list(n, distinct)
    out: dict = {"policy": POLICY, "n": n, "block_size": block_size,
                 "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
                            f", Python {platform.python_version()}",
                 "load_average": round(os.getloadavg()[0], 2)}
    out["one_worker"] = _batch(items, 1, block_size)
    out["two_workers"] = _batch(items, 2, block_size)
    out["two_vs_one"] = round(out["two_workers"]["cases_per_s"]
                              / max(out["one_worker"]["cases_per_s"], 1e-9), 2)
    if cluster:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc, Client(lc) as client:
            _batch(items[:4], None, 2, cluster=client)  # each worker loads the knowledge base
            out["dask_local_2"] = _batch(items, None, block_size, cluster=client)
    if rss_small:
        out["rss_small"] = peak_rss(rss_small, block_size, distinct)
    if rss_large:
        out["rss_large"] = peak_rss(rss_large, block_size, distinct)
    if rss_small and rss_large:
        out["rss_large_vs_small"] = round(out["rss_large"]["peak_rss_mb"]
                                          / out["rss_small"]["peak_rss_mb"], 3)
    return out


def _child(n: int, block_size: int, distinct: int, workers: int) -> None:
    print(json.dumps(_batch(case_stream(n, distinct), workers, block_size)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=600, help="cases of the throughput runs")
    p.add_argument("--block-size", type=int, default=200)
    p.add_argument("--distinct", type=int, default=560, help="distinct generated cases")
    p.add_argument("--rss-small", type=int, default=1000)
    p.add_argument("--rss-large", type=int, default=100_000, help="0: skip")
    p.add_argument("--no-cluster", action="store_true", help="skip the Dask LocalCluster run")
    p.add_argument("--json", action="store_true", help="print the dict as JSON")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        _child(args.child, args.block_size, args.distinct, args.workers)
        return 0
    result = measure(args.n, args.block_size, args.distinct, args.rss_small, args.rss_large,
                     not args.no_cluster)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Batch of generated cases under {POLICY}, blocks of {args.block_size}, NDJSON out "
          f"({result['machine']}; load average {result['load_average']} at start)")
    for key, label in (("one_worker", "1 worker"), ("two_workers", "2 workers"),
                       ("dask_local_2", "Dask LocalCluster(2)")):
        if key in result:
            r = result[key]
            cpu = f", {r['cpu_ms_per_case']:.1f} ms CPU per case" if "cpu_ms_per_case" in r \
                else ""
            print(f"  {label:22} {r['cases']:>7} cases {r['seconds']:>8.1f} s "
                  f"{r['cases_per_s']:>7.1f} cases/s{cpu}")
    print(f"  2 workers / 1 worker   {result['two_vs_one']:.2f}x")
    for key in ("rss_small", "rss_large"):
        if key in result:
            r = result[key]
            print(f"  peak RSS at {r['cases']:>7} cases: {r['peak_rss_mb']:.1f} MB "
                  f"(PSS {r['peak_pss_mb']:.1f} MB; {r['cases_per_s']:.1f} cases/s)")
    if "rss_large_vs_small" in result:
        print(f"  peak RSS large / small  {result['rss_large_vs_small']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
