#!/usr/bin/env python3
"""Time `reasoner check` on the whole repository, as a user runs it: median of 3 runs each,
with HermiT and with --no-hermit (target: under 10 s without HermiT; the tests never assert
time, this benchmark measures it).

    python bench/bench_check.py            # prints the medians and the per-check timings

Each run is a fresh process (`python -m reasoner.cli check`), so imports and the JVM start of
HermiT are included, as a user would see them. Exit codes 0 (clean) and 1 (problems found) both
count as a run; anything else aborts.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


def run(args: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "reasoner.cli", "check", "--format", "json", *args],
                          capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"reasoner check {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    for label, args in (("without HermiT (--no-hermit)", ["--no-hermit"]), ("with HermiT", [])):
        times, last = [], {}
        for _ in range(RUNS):
            elapsed, last = run(args)
            times.append(elapsed)
        inner = ", ".join(f"{k} {v:.2f}" for k, v in sorted(last["timings"].items()))
        print(f"reasoner check {label}: median {statistics.median(times):.2f} s wall "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)}); last run by check: {inner}; "
              f"{last['counts']['error']} error(s), {last['files']} files")


if __name__ == "__main__":
    main()
