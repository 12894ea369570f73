"""The guideline author's workflow (issue 4), part 1: `reasoner check` and the owlready2 round
trip. (`test` with coverage, `diff`, versions and the derived pack: test_authoring_test_diff.py.)

Each kind of `check` problem is planted in a copy of the project (ontology/, knowledge/, shapes/,
cases/, qc/ copied into tmp_path) and must be reported with the right file and line. The line a
test expects is found in the text the test planted, never copied from the output.

HermiT runs (≈1.5 s each, a JVM start) are limited to three: the repository as a user runs
`reasoner check`, a planted unsatisfiable class, a planted inconsistency.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasoner.authoring import run_check
from reasoner.cli import main

from .conftest import ROOT

PREFIXES = """@prefix nr: <https://w3id.org/necessity/ontology#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix src: <https://w3id.org/necessity/source/> .
@prefix ev: <https://w3id.org/necessity/evidence/> .
@prefix lcd: <https://w3id.org/necessity/policy/lcd-l39240/> .
"""


def copy_project(target: Path, with_cases: bool = True) -> Path:
    for name in ("ontology", "knowledge", "shapes", "qc") + (("cases",) if with_cases else ()):
        shutil.copytree(ROOT / name, target / name)
    return target


def line_of(text: str, start: str) -> int:
    """1-based number of the first line of `text` that starts with `start` (after indentation)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(start):
            return number
    raise AssertionError(f"{start!r} not in the planted text")


def found(report, kind: str, file: str, line: int | None = None):
    hits = [p for p in report.problems if p.kind == kind and p.file == file
            and (line is None or p.line == line)]
    assert hits, (f"no {kind} at {file}:{line}; got:\n"
                  + "\n".join(f"  {p.place()} {p.kind} {p.message[:120]}" for p in report.problems))
    return hits


# ================================================================== check: the repository


def test_check_is_clean_on_the_repo_as_a_user_runs_it():
    """`reasoner check` (with HermiT: HermiT run 1 of 3) exits 0 on the repository."""
    proc = subprocess.run([sys.executable, "-m", "reasoner.cli", "check"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "clean" in proc.stdout.splitlines()[-1]


def test_check_json_without_hermit_says_hermit_was_skipped_and_reports_timings():
    # how long it takes is measured by bench/bench_check.py, never asserted (no test asserts time)
    result = CliRunner().invoke(main, ["check", "--no-hermit", "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.output)
    skipped = [p for p in data["problems"] if p["kind"] == "reasoner-skipped"]
    assert skipped and skipped[0]["severity"] == "info"
    assert {"parse", "sparql", "criteria", "declared", "qc"} <= set(data["timings"])


def test_check_exit_code_2_when_it_cannot_run(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "not found" in result.output


# ================================================================== check: planted problems

PLANTED_SHAPES = PREFIXES + """
# planted problems (tests/test_authoring_check.py)
lcd:PLANTED-NO-METADATA a nr:CoverageCriterion .

lcd:PLANTED-DUPLICATE a nr:CoverageCriterion ;
    nr:referenceId "ESI-CI-1" ; rdfs:label "Planted duplicate" ; nr:message "m" ;
    nr:onUnmet nr:Deny ; nr:citation src:lcd-l39240 .

lcd:PLANTED-BAD-CITATION a nr:CoverageCriterion ;
    nr:referenceId "PLANTED-3" ; rdfs:label "Planted bad citation" ; nr:message "m" ;
    nr:onUnmet nr:Deny ; nr:citation src:no-such-record .

lcd:version-2026-01-01 nr:hasCriterion lcd:PLANTED-DUPLICATE , lcd:PLANTED-BAD-CITATION .

lcd:PLANTED-BAD-SPARQL a sh:NodeShape ;
    sh:targetObjectsOf nr:indexRequest ;
    nr:conditionOf lcd:PLANTED-BAD-CITATION ; nr:conditionKind nr:UnmetCondition ;
    sh:severity sh:Violation ; sh:message "planted" ;
    sh:sparql [ a sh:SPARQLConstraint ; sh:prefixes lcd:prefixes ;
        sh:select "SELECT $this WHERE { $this nr:requestedDate }" ] .

lcd:PLANTED-TYPO-IN-SPARQL a sh:NodeShape ;
    sh:targetObjectsOf nr:indexRequest ;
    nr:conditionOf lcd:PLANTED-BAD-CITATION ; nr:conditionKind nr:UnmetCondition ;
    sh:severity sh:Violation ; sh:message "planted" ;
    sh:sparql [ a sh:SPARQLConstraint ; sh:prefixes lcd:prefixes ;
        sh:select \"\"\"
SELECT $this WHERE {
  $this nr:reasonDiagnoss ?rc .
}\"\"\" ] .

lcd:PLANTED-META a sh:NodeShape ;
    sh:targetObjectsOf nr:indexRequest ;
    sh:property [ sh:path nr:code ; sh:minCount "one" ] .

lcd:PLANTED-NO-CRITERION a sh:NodeShape ;
    sh:targetObjectsOf nr:indexRequest ;
    nr:conditionOf lcd:NO-SUCH-CRITERION ; nr:conditionKind nr:UnmetCondition ;
    sh:severity sh:Violation ; sh:message "planted" ;
    sh:sparql [ a sh:SPARQLConstraint ; sh:prefixes lcd:prefixes ;
        sh:select "SELECT $this WHERE { $this nr:requestedDate ?d }" ] .

lcd:PLANTED-SEVERITY a sh:NodeShape ;
    sh:targetObjectsOf nr:indexRequest ;
    nr:conditionOf lcd:PLANTED-BAD-CITATION ; nr:conditionKind nr:MissingCondition ;
    sh:severity sh:Violation ; sh:message "planted" ;
    sh:sparql [ a sh:SPARQLConstraint ; sh:prefixes lcd:prefixes ;
        sh:select "SELECT $this WHERE { $this nr:requestedDate ?d }" ] .
"""

PLANTED_ONTOLOGY = PREFIXES + """
# planted problems (tests/test_authoring_check.py)
nr:PlantedNoLabel a owl:Class .
nr:PlantedTwinA a owl:Class ; rdfs:label "planted twin" .
nr:PlantedTwinB a owl:Class ; rdfs:label "planted twin" .
nr:PlantedOld a owl:Class ; rdfs:label "planted old class" ; owl:deprecated true .
"""

PLANTED_KNOWLEDGE = PREFIXES + """
# planted problems (tests/test_authoring_check.py)
ev:planted-statement a nr:EvidenceStatement ;
    rdfs:label "planted statement" ;
    nr:citation src:no-such-source .
ev:planted-typo a nr:EvidenceStatement ;
    rdfs:label "planted typo" ;
    nr:statmentText "a typo in a property name" .
"""

PLANTED_PARSE = PREFIXES + """
lcd:ok a nr:CoverageCriterion .
lcd:broken a nr:CoverageCriterion ; rdfs:label "x" ; nr:citation undeclaredprefix:record .
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("planted"))
    (root / "shapes/lcd-l39240/zz-planted.ttl").write_text(PLANTED_SHAPES)
    (root / "shapes/lcd-l39240/zz-broken.ttl").write_text(PLANTED_PARSE)
    (root / "ontology/zz-planted.ttl").write_text(PLANTED_ONTOLOGY)
    (root / "knowledge/zz-planted.ttl").write_text(PLANTED_KNOWLEDGE)
    case_dir = root / "cases" / "seed-l5-snrb"
    case_text = (case_dir / "case.ttl").read_text()
    assert "nr:requestedDate" in case_text
    case_text = case_text.replace("nr:requestedDate", "nr:requestedDat", 1)
    case_text += "\n:planted-old a nr:PlantedOld .\n"
    (case_dir / "case.ttl").write_text(case_text)
    return root, run_check(root, hermit=False), case_text


SHAPES_FILE = "shapes/lcd-l39240/zz-planted.ttl"
CASE_FILE = "cases/seed-l5-snrb/case.ttl"

EXPECTED = [
    # (kind, file, how the test finds the line in what it planted)
    ("parse", "shapes/lcd-l39240/zz-broken.ttl", (PLANTED_PARSE, "lcd:broken")),
    ("sparql", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-BAD-SPARQL a")),
    ("meta-shacl", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-META a")),
    ("criterion-reference-id", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-METADATA a")),
    ("criterion-label", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-METADATA a")),
    ("criterion-message", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-METADATA a")),
    ("criterion-failure-meaning", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-METADATA a")),
    ("criterion-citation", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-METADATA a")),
    ("criterion-citation", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-BAD-CITATION a")),
    ("criterion-duplicate-reference-id", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-DUPLICATE a")),
    ("undeclared-iri", SHAPES_FILE, (PLANTED_SHAPES, "$this nr:reasonDiagnoss")),
    ("undeclared-iri", "knowledge/zz-planted.ttl", (PLANTED_KNOWLEDGE, "nr:statmentText")),
    ("undeclared-iri", CASE_FILE, ("case", "nr:requestedDat ")),
    ("qc/missing-label", "ontology/zz-planted.ttl", (PLANTED_ONTOLOGY, "nr:PlantedNoLabel")),
    ("qc/duplicate-label", "ontology/zz-planted.ttl", (PLANTED_ONTOLOGY, "nr:PlantedTwinA")),
    ("qc/duplicate-label", "ontology/zz-planted.ttl", (PLANTED_ONTOLOGY, "nr:PlantedTwinB")),
    ("qc/deprecated-in-use", CASE_FILE, ("case", ":planted-old a")),
    ("qc/dangling-reference", "knowledge/zz-planted.ttl", (PLANTED_KNOWLEDGE, "ev:planted-statement")),
    ("qc/criterion-in-no-version", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-METADATA a")),
    ("qc/criterion-without-condition", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-DUPLICATE a")),
    ("qc/condition-without-criterion", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-NO-CRITERION a")),
    ("qc/condition-severity-mismatch", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-SEVERITY a")),
    ("qc/missing-condition-without-request", SHAPES_FILE, (PLANTED_SHAPES, "lcd:PLANTED-SEVERITY a")),
]


@pytest.mark.parametrize("kind,file,where", EXPECTED, ids=[f"{k}@{Path(f).name}" for k, f, _ in EXPECTED])
def test_planted_problem_is_reported_at_its_file_and_line(planted, kind, file, where):
    root, report, case_text = planted
    text, start = where
    text = case_text if text == "case" else text
    problems = found(report, kind, file, line_of(text, start))
    assert all(p.fix for p in problems)


def test_every_qc_query_is_planted_and_explains_itself(planted):
    """Each qc/*.rq opens with a comment (what it finds, how to fix) and has a planted test."""
    from reasoner.authoring import load_qc_queries

    queries = load_qc_queries(ROOT)
    assert len(queries) >= 6
    planted_kinds = {k for k, _, _ in EXPECTED}
    for q in queries:
        assert q.description and q.fix != "see the query's comment", q.name
        assert f"qc/{q.name}" in planted_kinds, f"no planted test for qc/{q.name}"


def test_planted_report_exits_1_and_renders_file_line(planted, monkeypatch):
    root, report, _ = planted
    assert not report.clean
    monkeypatch.setenv("NECESSITY_HOME", str(root))
    result = CliRunner().invoke(main, ["check", "--no-hermit"])
    assert result.exit_code == 1
    line = line_of(PLANTED_SHAPES, "lcd:PLANTED-BAD-SPARQL a")
    assert f"{SHAPES_FILE}:{line}: error: [sparql]" in result.output


def test_paths_restrict_the_report(planted, monkeypatch):
    root, _, _ = planted
    monkeypatch.setenv("NECESSITY_HOME", str(root))
    report = run_check(root, [str(root / "knowledge")], hermit=False)
    assert report.problems and {p.file.split("/")[0] for p in report.problems} == {"knowledge"}


# ---------------------------------------------------------------- HermiT (runs 2 and 3 of 3)


def test_unsatisfiable_class_is_reported_at_its_line(tmp_path):
    root = copy_project(tmp_path, with_cases=False)
    text = PREFIXES + """
nr:PlantedA a owl:Class ; rdfs:label "planted A" .
nr:PlantedB a owl:Class ; rdfs:label "planted B" ; owl:disjointWith nr:PlantedA .
nr:PlantedBoth a owl:Class ; rdfs:label "planted both" ;
    rdfs:subClassOf nr:PlantedA , nr:PlantedB .
"""
    (root / "ontology/zz-unsat.ttl").write_text(text)
    report = run_check(root, hermit=True)
    hits = found(report, "unsatisfiable-class", "ontology/zz-unsat.ttl", line_of(text, "nr:PlantedBoth"))
    assert "PlantedBoth" in hits[0].message


def test_inconsistent_ontology_is_reported(tmp_path):
    root = copy_project(tmp_path, with_cases=False)
    text = PREFIXES + """
nr:PlantedA a owl:Class ; rdfs:label "planted A" .
nr:PlantedB a owl:Class ; rdfs:label "planted B" ; owl:disjointWith nr:PlantedA .
nr:planted-individual a nr:PlantedA , nr:PlantedB ; rdfs:label "planted individual" .
"""
    (root / "ontology/zz-inconsistent.ttl").write_text(text)
    report = run_check(root, hermit=True)
    hits = [p for p in report.problems if p.kind == "ontology-inconsistent"]
    assert hits and hits[0].severity == "error" and hits[0].file == "ontology"


def test_without_java_the_check_says_so_and_never_passes_silently(tmp_path, monkeypatch):
    import owlready2

    monkeypatch.setattr(owlready2, "JAVA_EXE", str(tmp_path / "no-java"))
    root = copy_project(tmp_path / "p", with_cases=False)
    report = run_check(root, hermit=True)
    skipped = [p for p in report.problems if p.kind == "reasoner-skipped"]
    assert skipped and skipped[0].severity == "warning"
    assert "java not available" in skipped[0].message


# ================================================================== owlready2 round trip


def test_ontology_round_trips_through_owlready2_without_losing_axioms():
    from reasoner.authoring import ontology_round_trip

    result = ontology_round_trip(ROOT)
    assert result.ok, (result.lost, result.saved, result.reloaded)
    assert result.original > 500 and not result.lost
