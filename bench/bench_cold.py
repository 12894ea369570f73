"""Cold start: the wall-clock time of one `reasoner` command in a fresh process, as a user
types it (issue 9, "Instant start"; targets: `--help` <= 0.2 s, a cold `determine` of one
case <= 0.7 s median of 5 with a warm disk cache).

Measured in one run, each a new process, the same case and policy:

* `help`: `reasoner --help`, median of `runs`;
* `first_run`: `reasoner determine` with an empty cache folder (loads, warms and writes the
  cache: the cost a user pays once per change of data, code or library);
* `cached`: the same command again, median of `runs`, reading the cache;
* `uncached`: the same command with `NECESSITY_CACHE=off`, median of `runs` (the baseline);
* `identical`: every determination printed byte for byte the same (else exit 1).

Each is reported as wall-clock seconds and as CPU seconds (user + system of the process):
when other jobs share the cores, the CPU time still says what the command costs.

The cache folder is a temporary one (the user's cache is neither read nor changed). Run:

    python bench/bench_cold.py --runs 5 --case cases/seed-l5-snrb --policy clinical-snrb
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command() -> list[str]:
    """The `reasoner` script installed beside this Python (what a user runs), else -m."""
    script = Path(sys.executable).with_name("reasoner")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reasoner"]


#: CPU seconds (user + system) of one run, beside its wall-clock seconds
CPU: dict[int, float] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str], env: dict[str, str], cpu: list | None = None) -> tuple[float, str]:
    """Wall-clock seconds and output of one run; its CPU seconds appended to `cpu` (they
    hold when other jobs share the cores, the wall clock does not)."""
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_children_cpu() - before)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed, proc.stdout


def measure(runs: int = 5, case: str = "cases/seed-l5-snrb", policy: str = "clinical-snrb",
            fmt: str = "json") -> dict:
    """Time the help, the first (cache-building) run, the cached and the uncached runs."""
    base = command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NECESSITY_CACHE")}
    folder = tempfile.mkdtemp(prefix="bench-cold-")
    cached_env = {**env, "NECESSITY_CACHE_DIR": str(Path(folder) / "cache")}
    off_env = {**env, "NECESSITY_CACHE": "off"}
    determine = [*base, "determine", case, "--policy", policy, "--format", fmt]
    try:
        help_cpu, first_cpu, cached_cpu, uncached_cpu = [], [], [], []
        help_times = [_timed([*base, "--help"], env, help_cpu)[0] for _ in range(runs)]
        first, reference = _timed(determine, cached_env, first_cpu)
        outputs, cached, uncached = [], [], []
        for _ in range(runs):  # interleaved, so that a burst of load hits both alike
            elapsed, out = _timed(determine, cached_env, cached_cpu)
            cached.append(elapsed)
            outputs.append(out)
            elapsed, out = _timed(determine, off_env, uncached_cpu)
            uncached.append(elapsed)
            outputs.append(out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "command": " ".join(determine),
        "runs": runs,
        "help_median_s": round(statistics.median(help_times), 3),
        "first_run_s": round(first, 3),
        "cached_median_s": round(statistics.median(cached), 3),
        "uncached_median_s": round(statistics.median(uncached), 3),
        "cached_s": [round(t, 3) for t in cached],
        "uncached_s": [round(t, 3) for t in uncached],
        "cpu_s": {"help_median": round(statistics.median(help_cpu), 3),
                  "first_run": round(first_cpu[0], 3),
                  "cached_median": round(statistics.median(cached_cpu), 3),
                  "uncached_median": round(statistics.median(uncached_cpu), 3)},
        "identical": all(out == reference for out in outputs),
        "machine": {
            "python": platform.python_version(),
            "system": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(
                os, "getloadavg") else None,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--case", default="cases/seed-l5-snrb")
    ap.add_argument("--policy", default="clinical-snrb")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    result = measure(args.runs, args.case, args.policy)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        m = result["machine"]
        print(f"# {result['command']}  ({result['runs']} runs; Python {m['python']}, "
              f"{m['system']}, {m['cpus']} CPUs, load {m['load_average']})")
        cpu = result["cpu_s"]
        print("                         wall clock         CPU (user + system)")
        print(f"reasoner --help          median {result['help_median_s']:.3f} s   "
              f"{cpu['help_median']:.3f} s")
        print(f"determine, first run            {result['first_run_s']:.3f} s   "
              f"{cpu['first_run']:.3f} s  (builds the cache)")
        print(f"determine, cached        median {result['cached_median_s']:.3f} s   "
              f"{cpu['cached_median']:.3f} s  {result['cached_s']}")
        print(f"determine, no cache      median {result['uncached_median_s']:.3f} s   "
              f"{cpu['uncached_median']:.3f} s  {result['uncached_s']}")
        print(f"identical output: {'yes' if result['identical'] else 'NO'}")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
