"""Generated cases for benchmarks and equivalence checks: N distinct, varied cases from the corpus.

Each generated case is a copy of one of the Turtle cases of `cases/*/case.ttl` (taken in turn)
under its own case IRI (`gen-00000`, ...); every other copy also loses one randomly chosen fact
(a resource about the patient other than the index request, with every triple naming it), so
verdicts vary. Same `n` and `seed`, same cases.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from rdflib import Graph

ROOT = Path(__file__).resolve().parent.parent


def templates(root: Path = ROOT) -> list[tuple[Path, str]]:
    """The Turtle cases the generator copies, in path order."""
    sources = sorted(root.glob("cases/*/case.ttl"))
    if not sources:
        raise SystemExit(f"no Turtle cases under {root / 'cases'}")
    return [(p, p.read_text(encoding="utf-8")) for p in sources]


def generate_cases(n: int, seed: int = 7, root: Path = ROOT) -> Iterator:
    """Yield `n` distinct `reasoner.case.Case` objects (see the module docstring)."""
    from reasoner.case import case_from_graph
    from reasoner.vocab import CASE_BASE, NR

    rng = random.Random(seed)
    sources = templates(root)
    for i in range(n):
        path, text = sources[i % len(sources)]
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
        yield case
