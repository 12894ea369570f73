"""FHIR intake cost beside the determination, same cases, same run.

For every FHIR case (cases/*/bundle.json, or --glob), N repetitions of:

* mapping: `json.loads` of the file + `reasoner.intake.fhir.map_bundle` (wrapper flattening,
  fhir.resources R4B structure check, envelope rules, mapping to the case graph);
* determination: `Reasoner.determine` of the already mapped case under --policy (per-case graph,
  rules, shapes, trace, citations).

Prints the median per case of each, over all cases, and the ratio mapping/determination
(issue 3: mapping must add less than the determination itself). Run:

    python bench/bench_fhir.py --n 5 --policy lcd-l39240
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reasoner.api import Reasoner  # noqa: E402
from reasoner.case import case_from_graph  # noqa: E402
from reasoner.intake import fhir  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5, help="repetitions per case (default 5)")
    ap.add_argument("--policy", default="lcd-l39240")
    ap.add_argument("--glob", default="cases/*/bundle.json")
    ap.add_argument("--verbose", action="store_true", help="print every case")
    args = ap.parse_args(argv)

    paths = sorted(ROOT.glob(args.glob))
    if not paths:
        print(f"no FHIR cases match {args.glob}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    r = Reasoner.load()
    load_s = time.perf_counter() - t0
    kb = r.kb.knowledge
    fhir.context_for(kb)  # built once per knowledge base, like the engine's own state
    r.determine(r.load_case(paths[0]), args.policy)  # warm-up: first-run SPARQL parsing

    map_medians, det_medians = [], []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        maps, dets = [], []
        case = None
        for _ in range(args.n):
            t = time.perf_counter()
            graph = fhir.map_bundle(json.loads(text), str(path), kb=kb)
            maps.append(time.perf_counter() - t)
            case = case_from_graph(graph, source=str(path), kind="fhir", default_id=path.parent.name)
            t = time.perf_counter()
            r.determine(case, args.policy)
            dets.append(time.perf_counter() - t)
        m, d = statistics.median(maps), statistics.median(dets)
        map_medians.append(m)
        det_medians.append(d)
        if args.verbose:
            print(f"{path.parent.name:48s} mapping {m * 1000:7.1f} ms   determination {d * 1000:7.1f} ms")

    m, d = statistics.median(map_medians), statistics.median(det_medians)
    print(f"FHIR cases: {len(paths)}, repetitions: {args.n}, policy: {args.policy}, "
          f"knowledge base load: {load_s:.2f} s")
    print(f"median mapping per case:       {m * 1000:7.1f} ms  (max {max(map_medians) * 1000:.1f} ms)")
    print(f"median determination per case: {d * 1000:7.1f} ms  (max {max(det_medians) * 1000:.1f} ms)")
    print(f"mapping / determination:       {m / d:7.2f}")
    return 0 if m < d else 1


if __name__ == "__main__":
    sys.exit(main())
