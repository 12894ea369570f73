#!/usr/bin/env python3
"""Benchmark the decision store (issue 5): batch throughput into the embedded store with 1 and
2 worker processes in the same run, and the median latency of every queries/*.rq at 10,000
stored decisions.

    python bench/bench_store.py                        # defaults below
    python bench/bench_store.py --throughput-cases 200 --decisions 10000 --repeat 7
    python bench/bench_store.py --redecide             # 10,000 real re-decisions (slow)

Workload
- Throughput: `--throughput-cases` requests (default: one per corpus case) made by re-deciding the
  corpus cases of `cases/` under synthetic case ids (`<id>-t<k>`) with every date shifted by k
  days, so that each record is a distinct graph; each into a fresh on-disk store, first with
  `--workers 1`, then 2. Times include writing every record (one transaction each); the
  knowledge base is loaded before the clock starts.
- Query latency: a fresh store holding `--decisions` records. By default the records of the
  2-worker throughput run (one per corpus case; else each corpus case decided once) are cloned
  under synthetic ids (`<id>-b<i>`) with their dates shifted by (37 i mod 365) days (verdicts copied, not re-derived: the latency of the queries depends on
  the shape and size of the data, which the clones keep); `--redecide` re-decides every one
  instead. Each query runs once to warm up, then `--repeat` times; the median is reported, with
  the row count. The knowledge graph is loaded into the store (as `reasoner query --store` does).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyoxigraph as ox  # noqa: E402

from reasoner import batch  # noqa: E402
from reasoner.batch import CaseResult, run_batch  # noqa: E402
from reasoner.case import collect_cases  # noqa: E402
from reasoner.store import EmbeddedStore, record_ntriples, safe_iri  # noqa: E402
from reasoner.vocab import CASE_BASE, DETERMINATION_BASE  # noqa: E402

XSD_DATE = "http://www.w3.org/2001/XMLSchema#date"


def rewrite_case(case, new_id: str, shift_days: int):
    """The case under a new id, every xsd:date / xsd:dateTime moved by `shift_days`."""
    from rdflib import Graph, Literal, URIRef
    from rdflib.namespace import XSD

    from reasoner.case import case_from_graph

    old_base, new_base = f"{CASE_BASE}{case.id}/", f"{CASE_BASE}{new_id}/"
    delta = timedelta(days=shift_days)

    def term(t):
        if isinstance(t, URIRef) and str(t).startswith(old_base):
            return URIRef(new_base + str(t)[len(old_base):])
        if isinstance(t, Literal) and t.datatype in (XSD.date, XSD.dateTime):
            value = t.toPython()
            if isinstance(value, (date, datetime)):
                return Literal(value + delta, datatype=t.datatype)
        return t

    g = Graph()
    for s, p, o in case.graph:
        g.add((term(s), p, term(o)))
    return case_from_graph(g, source=f"{case.source}#{new_id}", kind=case.kind, default_id=new_id)


def decide_synthetic(item: str) -> CaseResult:
    """Worker function: `path<TAB>suffix<TAB>shift` -> the record of the re-decided case."""
    path, suffix, shift = item.split("\t")
    start = time.perf_counter()
    r = batch._WORKER["reasoner"]
    try:
        case = r.load_case(path)
        case = rewrite_case(case, f"{case.id}-{suffix}", int(shift))
        d = r.determine(case, batch._WORKER["policy"], batch._WORKER["version"])
        nt = record_ntriples(r.record_graph(d, case))
        return CaseResult(item, safe_iri(d.iri), d.outcome, nt, seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - reported in the summary
        return CaseResult(item, error=f"{path}: {type(exc).__name__}: {exc}")


def clone_record(nt: str, case_id: str, new_id: str, shift_days: int) -> str:
    text = nt.replace(f"{CASE_BASE}{case_id}/", f"{CASE_BASE}{new_id}/")
    text = text.replace(f"{DETERMINATION_BASE}{case_id}/", f"{DETERMINATION_BASE}{new_id}/")
    if shift_days:
        delta = timedelta(days=shift_days)

        def move(m):
            return f'"{(date.fromisoformat(m.group(1)) + delta).isoformat()}"^^<{XSD_DATE}>'

        text = re.sub(r'"(\d{4}-\d{2}-\d{2})"\^\^<' + re.escape(XSD_DATE) + ">", move, text)
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=str(ROOT / "cases"))
    p.add_argument("--policy", default="lcd-l39240")
    p.add_argument("--throughput-cases", type=int, default=0,
                   help="requests per throughput run (default: one per corpus case)")
    p.add_argument("--decisions", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--redecide", action="store_true",
                   help="re-decide every one of --decisions instead of cloning records")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()

    corpus = collect_cases([args.cases])
    print(f"corpus: {len(corpus)} cases in {args.cases}; policy {args.policy}; "
          f"{os.cpu_count()} CPU(s); Python {sys.version.split()[0]}")
    batch._init_state(str(ROOT), args.policy, None)  # knowledge base loaded before any clock
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))

    if not args.skip_throughput:
        n = args.throughput_cases or len(corpus)
        rows = []
        for workers in (1, 2):
            items = [f"{corpus[k % len(corpus)]}\tt{k}-w{workers}\t{k}" for k in range(n)]
            store = EmbeddedStore(str(tmp / f"throughput-{workers}"))
            results = []
            summary = run_batch(items, args.policy, store, workers=workers, root=str(ROOT),
                                decide=decide_synthetic, progress=results.append)
            decided = [r for r in results if not r.error]
            store.close()
            rows.append((workers, summary))
        print(f"\nBatch throughput into the embedded store ({n} requests re-decided under "
              "synthetic ids, one record per transaction)")
        print(f"{'workers':>7} | {'stored':>6} | {'errors':>6} | {'seconds':>8} | {'cases/s':>8} | speed-up")
        base = rows[0][1].rate or 1.0
        for workers, s in rows:
            print(f"{workers:>7} | {s.written:>6} | {len(s.errors):>6} | {s.seconds:>8.1f} | "
                  f"{s.rate:>8.2f} | {s.rate / base:.2f}x")

    # ------------------------------------------------------------------ 10,000 decisions
    store = EmbeddedStore(str(tmp / "decisions"))
    start = time.perf_counter()
    originals = decided if not args.skip_throughput else []  # reuse the 2-worker records
    if args.redecide:
        items = [f"{corpus[i % len(corpus)]}\tb{i}\t{(37 * i) % 365}" for i in range(args.decisions)]
        summary = run_batch(items, args.policy, store, workers=2, root=str(ROOT),
                            decide=decide_synthetic)
        made = summary.written
        how = f"re-decided ({summary.rate:.2f} cases/s)"
    else:
        if not originals:
            scratch = EmbeddedStore(str(tmp / "originals"))
            run_batch([str(c) for c in corpus], args.policy, scratch, workers=2, root=str(ROOT),
                      progress=lambda r: originals.append(r) if not r.error else None)
            scratch.close()
        ids = [r.iri[len(DETERMINATION_BASE):].split("/", 1)[0] for r in originals]
        made, parts = 0, []
        for i in range(args.decisions):
            k = i % len(originals)
            nt = clone_record(originals[k].record, ids[k], f"{ids[k]}-b{i}", (37 * i) % 365)
            graph = originals[k].iri.replace(f"{DETERMINATION_BASE}{ids[k]}/",
                                             f"{DETERMINATION_BASE}{ids[k]}-b{i}/")
            # N-Triples line "s p o ." -> N-Quads "s p o <graph> ."
            parts.append("".join(f"{line.rstrip()[:-1]}<{graph}> .\n"
                                 for line in nt.splitlines() if line.strip()))
            if len(parts) == 500 or i == args.decisions - 1:
                # Bulk loading (not transactional) is for building the benchmark store only.
                store.store.bulk_load("".join(parts).encode("utf-8"), format=ox.RdfFormat.N_QUADS)
                made += len(parts)
                parts = []
        how = f"cloned from {len(originals)} decided corpus cases"
    build = time.perf_counter() - start
    store.ensure_kb(ROOT)
    quads = store.select_rows("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")[0]["n"]
    records = len(store.records())
    print(f"\nQuery latency at {records} stored decisions ({how}; {int(quads):,} quads incl. the "
          f"knowledge graph; built in {build:.0f} s); median of {args.repeat} runs after one warm-up")
    print(f"{'query':<36} | {'median ms':>9} | {'min ms':>7} | {'rows':>5}")
    for path in sorted((ROOT / "queries").glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        kind, payload, _ = store.select_json(text, source=path.name)
        n_rows = len(store.select_rows(text, source=path.name)) if kind == "solutions" else 0
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            store.select_json(text, source=path.name)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{path.name:<36} | {statistics.median(times):>9.1f} | {min(times):>7.1f} | {n_rows:>5}")
    store.close()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
