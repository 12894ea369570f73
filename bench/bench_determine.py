"""Determination latency: the engine's fast path against a naive pySHACL run, same cases, same run.

Workload: N cases generated from the Turtle cases in cases/ (each copy gets its own case IRI;
every other copy also loses one randomly chosen fact, so verdicts vary), decided under one
policy pack.

* fast: `Reasoner.determine` (small per-case graph, shapes parsed once, prepared SPARQL cached),
  full determination including trace and citations.
* naive: per case, ontology + knowledge + case merged into one graph, its RDFS closure (owlrl),
  the same inference rules run on it, then `pyshacl.validate(..., inference="rdfs")` with nothing
  reused; verdicts computed from its report by the same aggregation.

Both must give identical verdicts for every case (checked; exit 1 otherwise). Reports medians
per case and cases/s, and the ratio naive/fast. Run:

    python bench/bench_determine.py --n 200 --policy lcd-l39240
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import owlrl
from rdflib import Graph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reasoner.api import Reasoner  # noqa: E402
from reasoner.case import case_from_graph  # noqa: E402
from reasoner.determine import CaseGraph  # noqa: E402
from reasoner.engines.shacl import validate_reference  # noqa: E402
from reasoner.vocab import CASE_BASE, NR  # noqa: E402


def generate_cases(n: int, seed: int = 7):
    sources = sorted(ROOT.glob("cases/*/case.ttl"))
    if not sources:
        sys.exit("no Turtle cases under cases/")
    rng = random.Random(seed)
    templates = [(p, p.read_text(encoding="utf-8")) for p in sources]
    cases = []
    for i in range(n):
        path, text = templates[i % len(templates)]
        case_id = path.parent.name
        text = text.replace(f"{CASE_BASE}{case_id}/", f"{CASE_BASE}gen-{i:05d}/")
        graph = Graph().parse(data=text, format="turtle")
        case = case_from_graph(graph, source=f"gen-{i}", kind="turtle", default_id=f"gen-{i:05d}")
        if i % 2:
            facts = sorted(s for s in set(graph.subjects(NR.subject, None)) if s != case.request)
            if facts:
                victim = rng.choice(facts)
                graph.remove((victim, None, None))
                graph.remove((None, None, victim))
        cases.append(case)
    return cases


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
    from reasoner.kb import as_date

    requested = as_date(case.graph.value(case.request, NR.requestedDate))
    version = pack.version(None, on=requested)
    d = r.determiner.assemble(case, pack, version, CaseGraph(merged, Graph()), report, requested)
    return d.verdicts()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="cases to generate (default 200)")
    ap.add_argument("--naive-n", type=int, default=None,
                    help="cases for the naive run (default: all N; the naive run is slow)")
    ap.add_argument("--policy", default="lcd-l39240")
    args = ap.parse_args()

    t0 = time.perf_counter()
    r = Reasoner.load(ROOT)
    load_s = time.perf_counter() - t0
    cases = generate_cases(args.n)

    fast_times, fast_verdicts = [], {}
    for case in cases:
        t = time.perf_counter()
        d = r.determine(case, args.policy)
        fast_times.append(time.perf_counter() - t)
        fast_verdicts[case.id] = d.verdicts()

    naive_n = args.naive_n or len(cases)
    naive_times, mismatches = [], []
    for case in cases[:naive_n]:
        t = time.perf_counter()
        verdicts = naive_verdicts(r, case, args.policy)
        naive_times.append(time.perf_counter() - t)
        if verdicts != fast_verdicts[case.id]:
            mismatches.append(case.id)

    fast_med = statistics.median(fast_times)
    naive_med = statistics.median(naive_times)
    print(f"workload: {len(cases)} cases generated from {len(set(c.id for c in cases))} ids "
          f"({len(list(ROOT.glob('cases/*/case.ttl')))} Turtle templates), policy {args.policy}")
    print(f"knowledge base load (once): {load_s:.2f} s")
    print(f"{'path':<8} {'cases':>6} {'median ms/case':>15} {'cases/s':>9}")
    print(f"{'fast':<8} {len(fast_times):>6} {fast_med * 1000:>15.1f} {len(fast_times) / sum(fast_times):>9.1f}")
    print(f"{'naive':<8} {len(naive_times):>6} {naive_med * 1000:>15.1f} {len(naive_times) / sum(naive_times):>9.2f}")
    print(f"speed-up (median naive / median fast): {naive_med / fast_med:.1f}x")
    if mismatches:
        print(f"VERDICTS DIFFER on {len(mismatches)} cases: {', '.join(mismatches[:10])}")
        return 1
    print(f"verdicts identical on all {len(naive_times)} cases compared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
