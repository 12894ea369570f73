#!/usr/bin/env python3
"""Benchmark the decision store: batch throughput into the embedded store with 1 and 2 worker
processes in the same run, and the median latency of every analyst query (queries/*.rq) at
100,000 stored decisions, beside the same queries as written before the decision summary
(bench/record-queries/, reading the record graphs) as the baseline.

    python bench/bench_store.py                             # defaults below
    python bench/bench_store.py --decisions 100000 --baseline-decisions 10000 --repeat 5
    python bench/bench_store.py --skip-throughput --json    # the dict of `measure` as JSON

From Python: ``measure(decisions=100_000, baseline_decisions=10_000, cache=None) -> dict``
(`cache`: the folder of kept stores; None builds them in a temporary folder).

Workload
- Throughput (unless `--skip-throughput`): `--throughput-cases` requests (default: one per
  corpus case) made by re-deciding the corpus cases of `cases/` under synthetic case ids
  (`<id>-t<k>`) with every date shifted by k days, each into a fresh on-disk store, first with
  `--workers 1`, then 2. Times include writing every record with its summary (one transaction
  each); the knowledge base is loaded before the clock starts.
- Query latency: a store holding `--decisions` records cloned from the decided corpus (each
  corpus case decided once under `--policy`) under synthetic ids (`<id>-b<i>`) with their dates
  shifted by (37 i mod 365) days: verdicts are copied, not re-derived (the latency of the
  queries depends on the shape and size of the data, which the clones keep). Every clone is the
  whole record as `reasoner batch --store` writes it, with the summary the store writes with a
  record (`reasoner.summary.summary_ntriples`). How the clones are made, checked and bulk loaded,
  and why: bench/store_clones.py. The store is kept in `--cache` (default
  ~/.cache/necessity-reasoner/bench-store/) under a key of its inputs and reused by the next run
  with the same inputs (the report says "reused"); `--no-cache` builds it in a temporary folder
  and removes it. It is opened as `reasoner query --store` opens it (knowledge graph loaded,
  summary checked). Each query runs once to warm up, then `--repeat` times; the medians of the
  wall-clock time and of the CPU time of the calling thread are reported with the row count.
  The baseline (bench/record-queries/) runs on a second store of `--baseline-decisions` records
  built the same way (the old queries take seconds each at 10,000 already; give
  `--baseline-decisions` equal to `--decisions` to run them at the full size), and the current
  queries run there too, so that both are compared at the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
from reasoner.summary import SUMMARY_GRAPH  # noqa: E402
from reasoner.vocab import CASE_BASE  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from store_clones import cached_store, default_cache, folder_size  # noqa: E402

QUERIES = ROOT / "queries"
BASELINE_QUERIES = ROOT / "bench" / "record-queries"


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


def decide_corpus(cases: str, policy: str, tmp: Path) -> list[CaseResult]:
    """Each corpus case decided once under `policy` (2 workers); the records kept in memory."""
    corpus = collect_cases([cases])
    originals: list[CaseResult] = []
    scratch = EmbeddedStore(str(tmp / "originals"))
    run_batch([str(c) for c in corpus], policy, scratch, workers=2, root=str(ROOT),
              progress=lambda r: originals.append(r) if not r.error else None)
    scratch.close()
    return sorted(originals, key=lambda r: r.iri)


def open_store(originals: list[CaseResult], decisions: int, cache: Path | None) -> dict:
    """The store of `decisions` clones (bench/store_clones.py: built, or reused from `cache`),
    opened as `reasoner query --store` opens it (knowledge graph loaded, summary checked).
    Returns its figures with the open store under "store"."""
    path, figures = cached_store([(r.iri, r.record) for r in originals], decisions, cache)
    store = EmbeddedStore(str(path), create=False)
    t = time.perf_counter()
    store.ensure_kb(ROOT)  # what `reasoner query --store` runs first: KB + summary check
    opened = time.perf_counter() - t
    count = store.select_rows(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{SUMMARY_GRAPH}> "
                              f"{{ ?s ?p ?o }} }}")[0]["n"]
    records = store.select_rows("SELECT (COUNT(?g) AS ?n) WHERE { GRAPH ?g { ?g a "
                                "<https://w3id.org/necessity/ontology#Determination> } }")[0]["n"]
    return {"store": store, "path": path, "records": int(records),
            "quads": figures["record_quads"] + int(count), "summary_quads": int(count),
            "disk_gb": round(folder_size(path) / 1e9, 2),
            "ensure_kb_seconds": round(opened, 2), **figures}


def time_queries(store: EmbeddedStore, folder: Path, repeat: int) -> dict[str, dict]:
    """name -> {"median_ms", "min_ms", "cpu_median_ms", "rows"} for every .rq of `folder`:
    wall-clock time, and the CPU time of the calling thread (pyoxigraph evaluates a query, and
    serialises its result, in the calling thread; RocksDB's own threads are not counted), which
    other jobs on a shared machine inflate much less."""
    out = {}
    for path in sorted(folder.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        kind, payload, _ = store.select_json(text, source=path.name)  # warm-up
        rows = len(json.loads(payload)["results"]["bindings"]) if kind == "solutions" else 0
        times, cpu = [], []
        for _ in range(repeat):
            t, c = time.perf_counter(), time.thread_time()
            store.select_json(text, source=path.name)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c) * 1000)
        out[path.stem] = {"median_ms": round(statistics.median(times), 1),
                          "min_ms": round(min(times), 1),
                          "cpu_median_ms": round(statistics.median(cpu), 1), "rows": rows}
    return out


def throughput(cases: str, policy: str, n: int, tmp: Path) -> list[dict]:
    corpus = collect_cases([cases])
    n = n or len(corpus)
    rows = []
    for workers in (1, 2):
        items = [f"{corpus[k % len(corpus)]}\tt{k}-w{workers}\t{k}" for k in range(n)]
        store = EmbeddedStore(str(tmp / f"throughput-{workers}"))
        s = run_batch(items, policy, store, workers=workers, root=str(ROOT),
                      decide=decide_synthetic)
        store.close()
        rows.append({"workers": workers, "stored": s.written, "errors": len(s.errors),
                     "seconds": round(s.seconds, 1), "cases_per_s": round(s.rate, 2)})
    return rows


def measure(decisions: int = 100_000, baseline_decisions: int = 10_000, repeat: int = 5,
            cases: str = str(ROOT / "cases"), policy: str = "lcd-l39240",
            throughput_cases: int | None = None, cache: Path | None = None) -> dict:
    """Query medians at `decisions` stored decisions, and current + baseline (pre-summary)
    medians at `baseline_decisions` (0: no baseline); with `throughput_cases` (0 = one per
    corpus case), batch throughput on 1 and 2 workers first. The stores are kept in (and reused
    from) `cache` (a folder; None: built in a temporary folder and removed). Returns a JSON-able
    dict."""
    batch._init_state(str(ROOT), policy, None)  # knowledge base loaded before any clock
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    result: dict = {"policy": policy, "cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "pyoxigraph": ox.__version__, "repeat": repeat}
    try:
        if throughput_cases is not None:
            result["throughput"] = throughput(cases, policy, throughput_cases, tmp)
        originals = decide_corpus(cases, policy, tmp)
        result["originals"] = len(originals)
        sizes = [("at_size", decisions)]
        if baseline_decisions:
            sizes.append(("baseline", baseline_decisions))
        for key, size in sizes:
            built = open_store(originals, size, cache)
            store, path = built.pop("store"), built.pop("path")
            entry = {**built, "queries": time_queries(store, QUERIES, repeat)}
            if key == "baseline":
                entry["record_queries"] = time_queries(store, BASELINE_QUERIES, repeat)
            store.close()
            if cache is None:
                shutil.rmtree(path.parent, ignore_errors=True)
            result[key] = entry
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _cell(q: dict | None) -> str:
    if not q:
        return f"{'-':>22}"
    return f"{q['median_ms']:>8.1f} / {q['cpu_median_ms']:>7.1f} ({q['rows']:>5})"


def print_report(r: dict) -> None:
    print(f"policy {r['policy']}; {r['cpus']} CPU(s); Python {r['python']}; "
          f"pyoxigraph {r['pyoxigraph']}; {r['originals']} corpus decisions cloned")
    if "throughput" in r:
        print("\nBatch throughput into the embedded store (records with their summaries, one "
              "transaction each)")
        print(f"{'workers':>7} | {'stored':>6} | {'errors':>6} | {'seconds':>8} | {'cases/s':>8}")
        for t in r["throughput"]:
            print(f"{t['workers']:>7} | {t['stored']:>6} | {t['errors']:>6} | {t['seconds']:>8} | "
                  f"{t['cases_per_s']:>8}")
    a, b = r["at_size"], r.get("baseline")
    for key, e in (("at_size", a), ("baseline", b)):
        if e:
            how = (f"reused from {e['cache']} (built earlier in" if e["reused"] else "built in")
            print(f"\n{key}: {e['records']:,} decisions, {e['quads']:,} quads "
                  f"({e['summary_quads']:,} in the summary graph), {e['disk_gb']} GB on disk; "
                  f"{how} {e['load_seconds']} s + compaction {e['compact_seconds']} s"
                  f"{')' if e['reused'] else ''} (summaries {e['summary_seconds']} s of it); "
                  f"ensure_kb {e['ensure_kb_seconds']} s")
            if e["cache"] and not e["reused"]:
                print(f"  kept in {e['cache']} for the next run (--no-cache: not kept)")
    print(f"\nQuery medians of {r['repeat']} runs after a warm-up: wall-clock ms / CPU ms (rows)")
    head = f"{'query':<32} | {str(a['records']) + ' summary':>22}"
    if b:
        head += (f" | {str(b['records']) + ' summary':>22}"
                 f" | {str(b['records']) + ' records (before)':>22}")
    print(head)
    for name, q in a["queries"].items():
        line = f"{name:<32} | {_cell(q)}"
        if b:
            line += f" | {_cell(b['queries'][name])} | {_cell(b['record_queries'].get(name))}"
        print(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=str(ROOT / "cases"))
    p.add_argument("--policy", default="lcd-l39240")
    p.add_argument("--throughput-cases", type=int, default=0,
                   help="requests per throughput run (default: one per corpus case)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--decisions", type=int, default=100_000)
    p.add_argument("--baseline-decisions", type=int, default=10_000,
                   help="size of the store for the pre-summary queries (0: none)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cache", type=Path, default=default_cache(),
                   help="folder keeping the built stores, reused when their inputs are the "
                        "same (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true",
                   help="build the stores in a temporary folder and remove them")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    r = measure(args.decisions, args.baseline_decisions, args.repeat, args.cases, args.policy,
                None if args.skip_throughput else args.throughput_cases,
                None if args.no_cache else args.cache)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_report(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
