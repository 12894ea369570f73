"""The command line as a user runs it: outputs, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from reasoner.cli import main

from .conftest import CASES, ROOT

SEED = str(CASES / "seed-l5-snrb" / "case.ttl")


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_exit_codes():
    result = run("--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.output and "bad input" in result.output


def test_policies_lists_both_packs_with_versions():
    result = run("policies", "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    ids = {r["id"] for r in rows}
    assert {"lcd-l39240", "clinical-snrb"} <= ids
    assert all(r["version"] and r["criteria"] > 0 for r in rows)


def test_determine_json_is_byte_identical_across_runs():
    a = run("determine", SEED, "--policy", "lcd-l39240", "--format", "json")
    b = run("determine", SEED, "--policy", "lcd-l39240", "--format", "json")
    assert a.exit_code == 0, a.output
    assert a.output == b.output
    data = json.loads(a.output)
    assert data["outcome"] in ("approved", "denied", "pended")
    assert data["service"]["code"] == "64483"


def test_letter_is_byte_identical_across_runs():
    a = run("determine", SEED, "--policy", "clinical-snrb")
    b = run("determine", SEED, "--policy", "clinical-snrb")
    assert a.exit_code == 0 and a.output == b.output


def test_output_file_written_atomically(tmp_path):
    target = tmp_path / "out" / "d.json"
    result = run("determine", SEED, "--policy", "lcd-l39240", "--format", "json", "-o", str(target))
    assert result.exit_code == 0
    assert json.loads(target.read_text())["policy"]["id"] == "lcd-l39240"
    assert [p.name for p in target.parent.iterdir()] == ["d.json"]


def _error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_malformed_turtle_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix nr: <https://w3id.org/necessity/ontology#> .\n\n:case a nr:Case ;; .\n")
    _error(run("determine", str(bad), "--policy", "lcd-l39240"), "bad.ttl", "line")


def test_missing_file():
    _error(run("determine", "no/such/case.ttl", "--policy", "lcd-l39240"), "no/such/case.ttl", "not found")


def test_unknown_policy():
    _error(run("determine", SEED, "--policy", "no-such-policy"), "unknown policy", "lcd-l39240")


def test_unknown_version():
    _error(run("determine", SEED, "--policy", "lcd-l39240", "--version", "0.0.0-nope"), "unknown version")


def test_case_without_request(tmp_path):
    text = (CASES / "seed-l5-snrb" / "case.ttl").read_text()
    bad = tmp_path / "norequest.ttl"
    bad.write_text(text.replace("nr:indexRequest", "nr:hasUnrecognisedItem"))
    _error(run("determine", str(bad), "--policy", "lcd-l39240"), "norequest.ttl", "no request")


def test_bad_sparql_names_position():
    line = _error(run("query", "SELECT ?x WHERE { ?x ?y }"), "bad SPARQL")
    assert "query" in line


def test_query_file_and_case(tmp_path):
    q = tmp_path / "roots.rq"
    q.write_text("SELECT ?root WHERE { ?req nr:nerveRoot ?root }")
    result = run("query", str(q), "--case", SEED, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "root"
    assert any(line.endswith("root-L5") for line in result.output.splitlines())


def test_validate_exit_code_follows_conformance():
    result = run("validate", SEED, "--policy", "lcd-l39240")
    assert result.exit_code == 1  # the seed case fails LCD criteria
    assert result.output.startswith("Conforms: False")


@pytest.mark.parametrize("case", sorted(CASES.glob("*/case.ttl")), ids=lambda p: p.parent.name)
def test_validate_and_query_work_on_every_case(case):
    result = run("validate", str(case), "--policy", "lcd-l39240")
    assert result.exit_code in (0, 1), result.output
    assert result.output.startswith("Conforms: ")
    q = run("query", "SELECT (COUNT(*) AS ?n) WHERE { ?s nr:subject ?p }", "--case", str(case), "--format", "csv")
    assert q.exit_code == 0 and int(q.output.splitlines()[1]) > 0


def test_real_subprocess_run():
    proc = subprocess.run(
        [sys.executable, "-m", "reasoner.cli", "determine", SEED, "--policy", "lcd-l39240", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["case"].endswith("/case")
    bad = subprocess.run(
        [sys.executable, "-m", "reasoner.cli", "determine", "missing.ttl", "--policy", "lcd-l39240"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_json_contract_keys():
    """The issue-2 JSON contract: keys may be added, these stay."""
    data = json.loads(run("determine", SEED, "--policy", "lcd-l39240", "--format", "json").output)
    assert {"case", "policy", "service", "outcome", "clinician_review_required", "criteria",
            "missing_information"} <= set(data)
    assert set(data["policy"]) >= {"id", "version", "iri"}
    assert set(data["service"]) >= {"code", "levels", "roots", "laterality", "date"}
    assert data["service"]["roots"] == ["L5"] and data["service"]["laterality"] == "left"
    assert data["service"]["levels"] == 1 and data["service"]["date"] == "2026-03-16"
    for c in data["criteria"]:
        assert set(c) >= {"id", "ref", "label", "status", "message", "facts", "citations"}
        assert c["status"] in ("met", "unmet", "missing", "not-applicable")
        for f in c["facts"]:
            assert set(f) >= {"iri", "text", "source", "inferred"}
        for cite in c["citations"]:
            assert set(cite) >= {"id", "text", "doi", "pmid"}
    for m in data["missing_information"]:
        assert set(m) >= {"ref", "what", "where"}
    assert data["clinician_review_required"] == (data["outcome"] == "denied")
