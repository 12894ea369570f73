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
    _error(run("determine", SEED, "--policy", "lcd-l39240", "--policy-version", "0.0.0-nope"), "unknown version")


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


# ---------------------------------------------------------------------- issue 8 point 8, issue 10 point 5


def test_determine_without_policy_decides_under_every_covering_pack_in_id_order():
    result = run("determine", SEED, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert isinstance(data, list)
    ids = [d["policy"]["id"] for d in data]
    assert ids == sorted(ids) and {"lcd-l39240", "clinical-snrb"} <= set(ids)
    named = json.loads(run("determine", SEED, "--policy", "lcd-l39240", "--format", "json").output)
    assert named == data[ids.index("lcd-l39240")]  # one pack named: a single object, as before


def test_determine_without_policy_letters_follow_one_another():
    result = run("determine", SEED)
    assert result.exit_code == 0, result.output
    for pid in ("clinical-snrb", "lcd-l39240"):
        assert f"Under policy {pid}" in result.output


def test_service_no_policy_covers_is_one_line_naming_code_and_system(tmp_path):
    text = (CASES / "seed-l5-snrb" / "case.ttl").read_text()
    assert "cpt:64483" in text
    other = tmp_path / "other-service.ttl"
    other.write_text(text.replace("cpt:64483", "cpt:99213"))
    line = _error(run("determine", str(other)), "other-service.ttl", "99213 (CPT)",
                  "no policy covers")
    assert "index ServiceRequest" not in line
    _error(run("validate", str(other)), "99213 (CPT)")


def test_policy_version_needs_policy_and_version_means_only_the_program_version():
    _error(run("determine", SEED, "--policy-version", "1.0.0"), "--policy-version needs --policy")
    assert run("--version").exit_code == 0
    bad = run("determine", SEED, "--policy", "lcd-l39240", "--version", "1.0.0")
    assert bad.exit_code == 2 and "No such option" in bad.output


def test_policies_prints_a_header_and_the_service_codes_each_pack_covers():
    result = run("policies")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split("\t")[:2] == ["policy", "version"] and "service codes" in lines[0]
    assert all("64483 (CPT)" in line for line in lines[1:] if line.startswith("lcd-l39240\t"))
    rows = json.loads(run("policies", "--format", "json").output)
    assert all(r["services"] == ["64483 (CPT)"] for r in rows if r["id"] == "lcd-l39240")


def test_validate_explains_a_criterion_with_conditions_of_two_kinds():
    result = run("validate", SEED, "--policy", "lcd-l39240")
    rows = [line for line in result.output.splitlines() if "/ESI-LIM-12-" in line]
    kinds = {line.split("\t")[0] for line in rows}
    assert {"Info", "Warning"} <= kinds  # not applicable and missing both held
    notes = [line for line in result.output.splitlines() if line.startswith("Note\tESI-LIM-12:")]
    assert len(notes) == 1
    assert "the verdict is not-applicable" in notes[0] and "precedence over missing" in notes[0]


def test_bad_sparql_says_its_position_once():
    line = _error(run("query", "SELECT ?x WHERE { ?x ?y }"), "bad SPARQL", "line 1 column 19")
    assert "at char" not in line and "(line:" not in line


def test_version_selection_in_json_and_turtle():
    data = json.loads(run("determine", SEED, "--policy", "lcd-l39240", "--format", "json").output)
    assert data["version_selection"] == "in force on the service date 2026-03-16"
    named = json.loads(run("determine", SEED, "--policy", "lcd-l39240", "--policy-version",
                           data["policy"]["version"], "--format", "json").output)
    assert named["version_selection"].endswith("asked for by name")
    from rdflib import Graph, Literal, URIRef

    g = Graph().parse(data=run("determine", SEED, "--policy", "lcd-l39240", "--format",
                               "turtle").output, format="turtle")
    prop = URIRef("https://w3id.org/necessity/ontology#versionSelection")
    assert list(g.objects(None, prop)) == [Literal(data["version_selection"])]


def test_help_does_not_load_the_knowledge_base():
    code = ("import sys\nfrom reasoner.cli.app import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED' if {'rdflib', 'pyshacl', 'reasoner.kb'} & set(sys.modules) else 'LIGHT')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.stdout.strip().endswith("LIGHT"), proc.stdout + proc.stderr
    assert "determine" in proc.stdout and "batch" in proc.stdout


def test_python_dash_m_reasoner_and_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "reasoner", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "determine" in proc.stdout
    text = (ROOT / "pyproject.toml").read_text()
    assert 'reasoner = "reasoner.cli.app:main"' in text


def test_no_import_circle_and_no_module_over_500_lines():
    """Issue 10 point 6: module-level imports among reasoner modules form no cycle."""
    import ast

    package = ROOT / "reasoner"
    modules = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    assert len(modules) > 30
    edges = {m: set() for m in modules}
    for name, path in modules.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - max(node.level - 1, 0)]
                target = ".".join(base + [node.module]) if node.level and node.module else (
                    ".".join(base) if node.level else node.module)
                # `from . import verdicts` imports the submodule, not the package's names
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                for cand in subs or [target]:
                    if cand in modules and cand != name:
                        edges[name].add(cand)
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [])
    assert cycles == []
    sizes = {m: len(p.read_text().splitlines()) for m, p in modules.items()}
    # reasoner/intake/ is being split on its own branch (issue 10 point 6); drop this exemption
    # once it is merged
    over = {m: n for m, n in sizes.items() if n >= 500 and not m.startswith("reasoner.intake.")}
    assert over == {}


def test_gitignore_covers_what_the_readme_commands_create():
    import fnmatch

    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    readme = (ROOT / "README.md").read_text()
    assert "decisions.oxigraph" in readme and ".venv" in readme
    for created in ("decisions.oxigraph/", ".venv/", "__pycache__/", ".pytest_cache/"):
        assert any(fnmatch.fnmatch(created, p.lstrip("/")) for p in patterns), created


def test_readme_tells_a_new_user_what_they_need_and_how_long_it_takes():
    readme = (ROOT / "README.md").read_text()
    for needle in ("Python 3.11", "Java", "HermiT", "sudo", "docs/writing-a-case.md",
                   "--policy-version"):
        assert needle in readme, needle
    assert "scripts/seed" in readme and "scripts/test" in readme
    assert "minute" in readme  # the measured durations of the two quick-start commands
    guide = (ROOT / "docs" / "writing-a-case.md").read_text()
    assert "docs/templates/case.ttl" in guide and "docs/templates/bundle.json" in guide


def test_readme_ad_hoc_query_returns_each_pair_once():
    import re

    readme = (ROOT / "README.md").read_text()
    queries = re.findall(r"reasoner query '([^']+)'", readme)
    assert len(queries) == 1, queries
    result = run("query", queries[0], "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[1:]
    assert len(rows) > 20 and len(rows) == len(set(rows))


def test_batch_prints_progress_when_not_on_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONER_PROGRESS_SECONDS", "0")
    cases = [str(CASES / n) for n in ("seed-l5-snrb", "approvable-left-l5")]
    result = run("batch", *cases, "--policy", "lcd-l39240", "--store", str(tmp_path / "s.oxigraph"),
                 "--workers", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["decided 1/2 cases", "decided 2/2 cases"]
    assert result.stdout.startswith("2 of 2 cases decided and stored")
