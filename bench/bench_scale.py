"""How the cost of one determination grows with a case's size (issue 12, "Bounded cost").

A case is grown by copying one of its observations N times under new IRIs (the same fact
documented again and again, as in a FHIR bundle with repeated Observations), for several N;
prints the seconds of the rules (per rule, when --rules) and of the whole determination, so
that a rule whose cost grows faster than the case shows. Run:

    python bench/bench_scale.py --case cases/seed-l5-snrb --node pain-character --n 100 250 500
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rdflib import Graph  # noqa: E402

from reasoner.api import Reasoner  # noqa: E402
from reasoner.case import case_from_graph  # noqa: E402
from reasoner.determine import build_case_graph  # noqa: E402


def grown(text: str, node: str, copies: int) -> str:
    block = re.search(rf"(?ms)^:{re.escape(node)} a .*?\.\n", text).group(0)
    return text + "\n" + "".join(block.replace(f":{node} a", f":{node}-copy-{i} a", 1)
                                 for i in range(1, copies + 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="cases/seed-l5-snrb")
    ap.add_argument("--node", default="pain-character")
    ap.add_argument("--policy", default="lcd-l39240")
    ap.add_argument("--n", type=int, nargs="+", default=[100, 250, 500])
    args = ap.parse_args()
    r = Reasoner.load()
    text = (ROOT / args.case / "case.ttl").read_text(encoding="utf-8")
    for n in args.n:
        graph = Graph().parse(data=grown(text, args.node, n), format="turtle")
        case = case_from_graph(graph, source=f"{args.node} x{n}", kind="turtle", default_id="x")
        t0 = time.perf_counter()
        build_case_graph(r.kb, case)
        rules = time.perf_counter() - t0
        t0 = time.perf_counter()
        d = r.determine(case, args.policy)
        total = time.perf_counter() - t0
        print(f"{args.node} x{n}: {len(graph)} triples, rules {rules:.2f} s, "
              f"determination {total:.2f} s, {d.outcome}")


if __name__ == "__main__":
    main()
