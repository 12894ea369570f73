"""Checks on a case before it is decided (issue 12: points 2, 3 and 4).

Three entry points, in the order a case meets them:

1. `check_case_file(path)`, before a case file is read or parsed: its size, and for Turtle the
   number of prefix declarations and terms (`limits`);
2. `check_case_graph(graph, source)`, after a Turtle case is parsed or a FHIR request mapped:
   triples, RDF list lengths and number sizes (`limits`);
3. `check_case(kb, case)`, before the rules run (`reasoner/determine/case_graph.py`): the case
   states case facts only (`terms`), with well-typed, plausible values (`plausible`).

Each failure is an `InputError` (exit code 2) of one line naming the file and the triple (or
the limit). The limits are the named constants of `limits` (README, "Exit codes").
"""

from __future__ import annotations

import weakref
from pathlib import Path

from rdflib import Graph

from . import limits
from .limits import LIMITS
from .plausible import ValueTypes, check_plausible, check_values, value_types
from .terms import ReservedTerms, check_terms, reserved_terms

__all__ = ["LIMITS", "CaseGuard", "check_case", "check_case_file", "check_case_graph"]


def check_case_file(path: str | Path) -> None:
    limits.check_file(Path(path))


def check_case_graph(graph: Graph, source: str) -> None:
    limits.check_graph(graph, source)


class CaseGuard:
    """The reserved terms and value types of one knowledge base, derived once."""

    def __init__(self, kb):
        self.terms: ReservedTerms = reserved_terms(kb.root / "ontology", kb.knowledge, kb.rules)
        self.types: ValueTypes = value_types(kb.ontology)

    def check(self, graph: Graph, source: str) -> None:
        check_terms(graph, source, self.terms)
        check_values(graph, source, self.types)
        check_plausible(graph, source)


_GUARDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def guard_for(kb) -> CaseGuard:
    guard = _GUARDS.get(kb)
    if guard is None:
        guard = _GUARDS[kb] = CaseGuard(kb)
    return guard


def check_case(kb, case) -> None:
    """Every check of a loaded case against the knowledge base `kb` (module docstring)."""
    limits.check_graph(case.graph, case.source)
    guard_for(kb).check(case.graph, case.source)
