#!/usr/bin/env python3
"""Every figure of the README's "Performance" section, in one invocation (issue 9, item 6).

Runs each benchmark of this folder in its own process, one after the other (so no two compete
for the cores), and prints, before each, the command and the load average, then what it printed.
Each benchmark measures its baseline in the same run (the naive pySHACL path beside the compiled
engine, the uncached start beside the cached one, one worker beside two, the pre-summary queries
beside the summary's, ...). Run on an otherwise idle machine:

    python bench/report.py                   # the README's workload
    python bench/report.py --quick           # smaller sizes, a few minutes
    python bench/report.py --only determine cold

Workload (defaults): 1,000 generated cases on the compiled and pySHACL engines, 30 naively;
cold start medians of 5; batch of 600 cases on 1 and 2 workers and a Dask LocalCluster(2), peak
memory at 1,000 and `--rss-large` cases; analyst queries at `--decisions` stored decisions with
the pre-summary queries at 10,000; 200 CRD order-sign calls from 20 concurrent clients.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def steps(args) -> list[tuple[str, list[str]]]:
    quick = args.quick
    return [
        ("determine", ["bench_determine.py", "--n", "200" if quick else "1000",
                       "--naive-n", "10" if quick else "30"]),
        ("cold", ["bench_cold.py", "--runs", "5"]),
        ("hooks", ["bench_hooks.py", "--calls", "200", "--clients", "20"]),
        ("batch", ["bench_batch.py", "--n", "200" if quick else "600", "--rss-small",
                   "300" if quick else "1000", "--rss-large",
                   "1000" if quick else str(args.rss_large)]),
        ("store", ["bench_store.py", "--skip-throughput", "--decisions",
                   "10000" if quick else str(args.decisions), "--baseline-decisions",
                   "2000" if quick else "10000", "--repeat", "5"]),
    ]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="run only these steps: determine cold hooks batch store")
    ap.add_argument("--rss-large", type=int, default=100_000,
                    help="cases of the large peak-memory batch run (default 100,000)")
    ap.add_argument("--decisions", type=int, default=100_000,
                    help="stored decisions of the analyst-query run (default 100,000)")
    args = ap.parse_args()
    chosen = steps(args)
    if args.only:
        unknown = set(args.only) - {name for name, _ in chosen}
        if unknown:
            ap.error(f"unknown step(s): {', '.join(sorted(unknown))}")
        chosen = [(name, cmd) for name, cmd in chosen if name in args.only]
    print(f"# Necessity Reasoner benchmarks, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    failed = []
    for name, cmd in chosen:
        load = os.getloadavg()[0]
        print(f"\n## {name}: python bench/{' '.join(cmd)}   (load average {load:.2f})",
              flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(BENCH / cmd[0]), *cmd[1:]],
                               cwd=BENCH.parent)
        print(f"-- {name}: {time.perf_counter() - started:.0f} s, exit {code}", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
