"""The guideline author's workflow: `check` (lint), `test` (cases + criterion coverage) and `diff`
(what a policy change flips). Core package: no click; the commands are in `reasoner/cli/author.py`.

Modules, one per concern: `problems` (the result model of check), `project` (the files as
parsed), `check` (run_check and the SPARQL, HermiT, SHACL-SHACL and criterion checks),
`declared` (undeclared IRIs), `qc` (the QC queries), `coverage` (`test`), `diff` (`diff`),
`cases` (the cases both decide, and their cache).

Every finding of `check` is a `Problem` (file, line, kind, message, how to fix, severity): one
structured result model, rendered as text or JSON by the CLI, never parsed back from text.

What `check` looks at (docs/authoring.md, "What `reasoner check` checks"):

1. every Turtle file under `ontology/`, `knowledge/`, `shapes/`, `cases/` parses (kind `parse`);
   every SPARQL text (`knowledge/rules/*.rq`, `qc/*.rq`, `sh:select`/`sh:ask` and `nr:traceQuery`
   literals of the packs) parses (kind `sparql`);
2. the ontology is consistent and has no unsatisfiable class: HermiT through the one owlready2
   adapter (`reasoner/engines/owl.py`); without Java the check is reported as skipped (a warning),
   never passed silently (kinds `ontology-inconsistent`, `unsatisfiable-class`, `reasoner-error`,
   `reasoner-skipped`);
3. every pack passes the SHACL-for-SHACL meta-shapes (SHACL §C, kind `meta-shacl`);
4. every criterion has a reference id unique within each version of its pack, a label, a message,
   a failure meaning (`nr:onUnmet`/`nr:onMissing`) and a citation resolving to a source with a
   title and a year (kinds `criterion-*`);
5. every IRI in a project namespace (`nr:`, the code systems, `vs:`) used in shapes, cases and
   knowledge, in triples or in SPARQL text, is declared in the ontology, a code system or a value
   set (kind `undeclared-iri`: catches typos);
6. the QC queries `qc/*.rq`, ROBOT-report style: each must return no rows (kind `qc/<name>`);
7. which engine decides under each pack, the compiled one or pySHACL, and why (kind `engine`, a
   note; `engines.py`).

Line numbers: a problem about a node is placed at the first line of its file where the node is
written as a subject (its prefixed name or `<IRI>` at the start of a line), else where it is first
written at all; a blank node is placed at the named node that holds it. This is a text search,
good enough for files written in the project's style (one subject per paragraph).
"""

from __future__ import annotations

from pathlib import Path

from .cases import DeterminationCache, find_cases
from .check import run_check
from .coverage import Expectation, TestReport, read_expectations, run_tests
from .diff import DiffReport, parse_policy_ref, run_diff, shape_changes
from .problems import CheckReport, Problem
from .qc import load_qc_queries

__all__ = [
    "CheckReport", "DeterminationCache", "DiffReport", "Expectation", "Problem", "TestReport",
    "find_cases", "load_qc_queries", "ontology_round_trip", "parse_policy_ref",
    "read_expectations", "run_check", "run_diff", "run_tests", "shape_changes",
]


def ontology_round_trip(root: Path | str | None = None):
    """Load the merged ontology into owlready2, save, reload, save (engines/owl.py.round_trip)."""
    from ..engines import owl
    from ..kb import project_root

    root = Path(root) if root else project_root()
    return owl.round_trip(owl.merge_modules(owl.ontology_paths(root)))
