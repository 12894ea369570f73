"""Determination latency: the compiled engine, the pySHACL fast path and a naive pySHACL run,
on the same generated cases, in one run.

Workload: N cases from `bench/generated.py` (copies of the Turtle cases in cases/, each under its
own case IRI, every other one missing one fact, so verdicts vary), decided under one policy pack.

* compiled: `Reasoner.determine` on the default engine (rules, shapes and trace queries in
  pyoxigraph, reasoner/engines/compiled.py), warm: the packs compiled and one case decided first.
* pyshacl: `Reasoner.determine` with `engine="pyshacl"` (small per-case graph, rules in rdflib,
  shapes parsed once, prepared SPARQL cached), the reference engine.
* naive: per case, ontology + knowledge + case merged into one graph, its RDFS closure (owlrl),
  the same inference rules run on it, then `pyshacl.validate(..., inference="rdfs")` with nothing
  reused; verdicts computed from its report by the same aggregation (first `--naive-n` cases).

Checks (exit 1 on any failure): the compiled engine's JSON is byte-identical to pySHACL's on every
case, and the naive run gives the same verdicts. Times are CPU time of this process per full
determination (trace, citations and summary included); wall time is printed beside. Run:

    python bench/bench_determine.py --n 1000 --policy lcd-l39240

`measure(...)` returns the same figures as a dict, for a combined bench report.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import owlrl
from rdflib import Graph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generated import generate_cases  # noqa: E402

from reasoner.api import Reasoner  # noqa: E402
from reasoner.determine import CaseGraph  # noqa: E402
from reasoner.engines.shacl import validate_reference  # noqa: E402
from reasoner.kb import KnowledgeBase, as_date  # noqa: E402
from reasoner.render.json import render_json  # noqa: E402
from reasoner.vocab import NR  # noqa: E402


def naive_verdicts(r: Reasoner, case, policy_id: str):
    kb = r.kb
    pack = kb.pack(policy_id)
    merged = Graph()
    for g in (kb.ontology, kb.knowledge, case.graph):
        for t in g:
            merged.add(t)
    for t in kb.value_set_triples:
        merged.add(t)
    # RDFS closure first, so the rules see the types the case implies, as the fast path does
    owlrl.DeductiveClosure(owlrl.RDFS_Semantics).expand(merged)
    for _path, rule in kb.rules:
        for t in merged.query(rule).graph:
            merged.add(t)
    report = validate_reference(merged, pack.graph, inference="rdfs")
    requested = as_date(case.graph.value(case.request, NR.requestedDate))
    version = pack.version(None, on=requested)
    d = r.determiner.assemble(case, pack, version, CaseGraph(merged, Graph()), report, requested)
    return d.verdicts()


def _timed(func, *args):
    cpu, wall = time.process_time(), time.perf_counter()
    out = func(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def _stats(cpu: list[float], wall: list[float]) -> dict:
    ordered = sorted(cpu)
    return {
        "cases": len(cpu),
        "median_ms": round(statistics.median(cpu) * 1000, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2),
        "mean_ms": round(statistics.fmean(cpu) * 1000, 2),
        "wall_median_ms": round(statistics.median(wall) * 1000, 2),
        "cases_per_s": round(len(cpu) / sum(cpu), 1) if sum(cpu) else None,
    }


def measure(n: int = 200, policy: str = "lcd-l39240", naive_n: int | None = 50,
            root: Path = ROOT) -> dict:
    """Decide `n` generated cases on the compiled engine and on pySHACL, and the first `naive_n`
    naively; return the figures and the equivalence checks (see the module docstring)."""
    started = time.perf_counter()
    kb = KnowledgeBase(root)
    load_s = time.perf_counter() - started
    compiled, reference = Reasoner(kb, engine="compiled"), Reasoner(kb, engine="pyshacl")
    cases = list(generate_cases(n, root=root))
    compiled.determiner.warm()
    for r in (compiled, reference):  # warm: first-use conversions and query preparation
        r.determine(cases[0], policy)

    runs: dict[str, tuple[list, list]] = {"compiled": ([], []), "pyshacl": ([], [])}
    differ = []
    for case in cases:
        texts = []
        for name, r in (("compiled", compiled), ("pyshacl", reference)):
            d, cpu, wall = _timed(r.determine, case, policy)
            runs[name][0].append(cpu)
            runs[name][1].append(wall)
            texts.append(render_json(d))
        if texts[0] != texts[1]:
            differ.append(case.id)

    naive_cpu, naive_wall, verdicts_differ = [], [], []
    for case in cases[:naive_n if naive_n is not None else len(cases)]:
        verdicts, cpu, wall = _timed(naive_verdicts, reference, case, policy)
        naive_cpu.append(cpu)
        naive_wall.append(wall)
        if verdicts != compiled.determine(case, policy).verdicts():
            verdicts_differ.append(case.id)

    out = {
        "workload": {"cases": len(cases), "policy": policy,
                     "templates": len(list(root.glob("cases/*/case.ttl")))},
        "load_s": round(load_s, 2),
        "compiled": _stats(*runs["compiled"]),
        "pyshacl": _stats(*runs["pyshacl"]),
        "naive": _stats(naive_cpu, naive_wall) if naive_cpu else None,
        "json_differ": differ,
        "naive_verdicts_differ": verdicts_differ,
    }
    c = out["compiled"]["median_ms"]
    out["ratios"] = {
        "pyshacl_over_compiled": round(out["pyshacl"]["median_ms"] / c, 1),
        "naive_over_compiled": round(out["naive"]["median_ms"] / c, 1) if naive_cpu else None,
        "naive_over_pyshacl": (round(out["naive"]["median_ms"] / out["pyshacl"]["median_ms"], 1)
                               if naive_cpu else None),
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="cases to generate (default 200)")
    ap.add_argument("--naive-n", type=int, default=50,
                    help="cases for the naive run (default 50: about 1.5 s each)")
    ap.add_argument("--policy", default="lcd-l39240")
    args = ap.parse_args()
    m = measure(args.n, args.policy, args.naive_n)
    w = m["workload"]
    print(f"workload: {w['cases']} generated cases ({w['templates']} Turtle templates), "
          f"policy {w['policy']}; knowledge base load {m['load_s']:.2f} s")
    print(f"{'path':<9} {'cases':>6} {'median ms':>10} {'p95 ms':>8} {'wall med':>9} {'cases/s':>8}")
    for name in ("compiled", "pyshacl", "naive"):
        s = m[name]
        if s:
            print(f"{name:<9} {s['cases']:>6} {s['median_ms']:>10.1f} {s['p95_ms']:>8.1f} "
                  f"{s['wall_median_ms']:>9.1f} {s['cases_per_s']:>8.1f}")
    r = m["ratios"]
    print(f"median ratios: pyshacl/compiled {r['pyshacl_over_compiled']}x, "
          f"naive/compiled {r['naive_over_compiled']}x, naive/pyshacl {r['naive_over_pyshacl']}x")
    failed = False
    if m["json_differ"]:
        print(f"JSON DIFFERS (compiled vs pyshacl) on {len(m['json_differ'])} cases: "
              f"{', '.join(m['json_differ'][:10])}")
        failed = True
    else:
        print(f"compiled and pyshacl JSON byte-identical on all {w['cases']} cases")
    if m["naive_verdicts_differ"]:
        print(f"NAIVE VERDICTS DIFFER on {len(m['naive_verdicts_differ'])} cases: "
              f"{', '.join(m['naive_verdicts_differ'][:10])}")
        failed = True
    elif m["naive"]:
        print(f"naive verdicts identical on all {m['naive']['cases']} cases compared")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
