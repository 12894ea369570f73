"""The guideline author's workflow (issue 4), part 2: `reasoner test` with coverage, the derived
commercial pack, versions and `reasoner diff`. (`check`: test_authoring_check.py.)

The flips a diff must report are computed from the case facts and the LCD verdicts, never copied
from the engine's output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from rdflib import URIRef

from reasoner.authoring import (
    DeterminationCache,
    find_cases,
    run_diff,
    run_tests,
    shape_changes,
)
from reasoner.cli import main
from reasoner.determine import build_case_graph
from reasoner.vocab import NR

from .conftest import CASES, ROOT

LCD = "lcd-l39240"
COMMERCIAL = "commercial-esi-example"
CURRENT = "https://w3id.org/necessity/policy/lcd-l39240/version-2026-01-01"


@pytest.fixture(scope="session")
def cache(reasoner):
    return DeterminationCache(reasoner)


# ================================================================== test + coverage


@pytest.fixture(scope="session")
def lcd_tests(reasoner, cache):
    return run_tests(reasoner, find_cases(None, ROOT), LCD, cache=cache)


def test_reasoner_test_exercises_every_lcd_criterion(lcd_tests, reasoner):
    """Every criterion of the current lcd-l39240 version is exercised met and unmet where it has
    an unmet condition, and missing where it has a missing condition (docs/authoring.md)."""
    assert len(lcd_tests.cases) >= 20
    pack = reasoner.kb.pack(LCD)
    current = pack.version(CURRENT)
    rows = lcd_tests.coverage[LCD]
    gaps = []
    for crit in current.criteria:
        row = rows[str(crit)]
        for status in row["reachable"]:
            if not row[status]:
                gaps.append(f"{row['ref']} never {status}")
    assert not gaps, gaps
    # informational criteria (only a not-applicable condition) are listed as unexercised
    unexercised = {r["ref"] for r in lcd_tests.unexercised().get(LCD, [])}
    for crit in current.criteria:
        row = rows[str(crit)]
        if not row["reachable"]:
            assert row["ref"] in unexercised


def test_reasoner_test_cli_prints_coverage_and_unexercised(tmp_path):
    runner = CliRunner()
    case = str(CASES / "seed-l5-snrb")
    result = runner.invoke(main, ["test", case, "--policy", LCD])
    assert result.exit_code in (0, 1), result.output
    assert "coverage of lcd-l39240" in result.output
    assert "criteria no case exercises" in result.output
    # .stdout: progress lines may go to standard error on a slow machine (issue 10 point 5)
    data = json.loads(runner.invoke(main, ["test", case, "--policy", LCD, "--format", "json"]).stdout)
    assert data["compared"] == 1 and data["cases"] == ["seed-l5-snrb"]


def test_reasoner_test_reports_a_mismatch_with_exit_1(tmp_path):
    folder = tmp_path / "seed-l5-snrb"
    shutil.copytree(CASES / "seed-l5-snrb", folder)
    expected = json.loads((folder / "expected.json").read_text())
    expected["expected"][LCD]["outcome"] = "approved"
    (folder / "expected.json").write_text(json.dumps(expected))
    result = CliRunner().invoke(main, ["test", str(folder), "--policy", LCD])
    assert result.exit_code == 1
    assert "MISMATCH seed-l5-snrb [lcd-l39240] outcome: expected approved, got denied" in result.output


# ================================================================== derived pack


def test_derived_files_are_up_to_date_with_the_lcd_pack():
    """scripts/derive_pack.py --check: the commercial pack and the versions example pack were
    regenerated after the last change to shapes/lcd-l39240 (else: re-run the script)."""
    specs = sorted((ROOT / "scripts" / "derive").glob("*.toml"))
    assert len(specs) == 2
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "derive_pack.py"), "--check", *map(str, specs)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_commercial_pack_keeps_every_lcd_criterion_but_three(reasoner):
    lcd, com = reasoner.kb.pack(LCD), reasoner.kb.pack(COMMERCIAL)
    changes = shape_changes(lcd, lcd.version(CURRENT), com, com.version())
    assert {c.ref: c.change for c in changes} == {"ESI-CI-3": "changed", "ESI-CI-8": "changed",
                                                  "COM-SEV-1": "added"}


# ================================================================== diff: the worked example


def expected_flips(reasoner, cache) -> dict[str, tuple[str, str]]:
    """The flips LCD -> commercial, computed from the case facts and the LCD verdicts, not from
    the diff: the commercial pack changes three things (docs/authoring.md, "Worked example").

    - ESI-CI-8: a responder (>= 50% relief) whose relief lasted 14-89 days, without >= 50%
      function improvement, is unmet under the LCD (< 90 days) and met under the commercial pack;
    - ESI-CI-3: failed conservative care covering 28-41 days meets the LCD's 4 weeks and fails
      the commercial 6 weeks (unless the zoster waiver applies);
    - COM-SEV-1: a latest NRS below 6 with no function-scale score fails; no NRS and no function
      scale is missing.
    A case flips when its outcome, recomputed with those verdicts, differs.
    """
    out = {}
    for path in find_cases(None, ROOT):
        d = cache.determine(path, LCD)
        verdicts = d.verdicts()
        unmet = {ref for ref, v in verdicts.items() if v == "unmet"}
        if unmet and unmet != {"ESI-CI-8"}:
            continue  # denied for another reason: none of the three changes can flip it
        data = build_case_graph(reasoner.kb, cache.case(path)).data
        req = cache.case(path).request
        new = dict(verdicts)
        # ESI-CI-8
        response = data.value(req, NR.latestSessionResponse)
        if verdicts.get("ESI-CI-8") == "unmet" and response is not None:
            pct = data.value(response, NR.percentPainRelief)
            days = data.value(response, NR.reliefDurationDays)
            fn = data.value(response, NR.percentFunctionImprovement)
            if pct is not None and days is not None and float(pct) >= 50 and 14 <= int(days) < 90 \
                    and (fn is None or float(fn) < 50):
                new["ESI-CI-8"] = "met"
        # ESI-CI-3
        coverage = data.value(req, NR.failedCareCoverageDays)
        if verdicts.get("ESI-CI-3") == "met" and coverage is not None and 28 <= int(coverage) < 42:
            codes = {data.value(dx, NR.code) for dx in data.objects(req, NR.reasonDiagnosis)}
            zoster = any((c, NR.inValueSet, URIRef("https://w3id.org/necessity/valueset/diagnosis-covered-zoster"))
                         in data for c in codes)
            if not zoster:
                new["ESI-CI-3"] = "unmet"
        # COM-SEV-1
        new["COM-SEV-1"] = com_sev(data, cache.case(path))
        statuses = set(new.values())
        outcome = "denied" if "unmet" in statuses else "pended" if "missing" in statuses else "approved"
        if outcome != d.outcome:
            out[d.case_id] = (d.outcome, outcome)
    return out


def com_sev(data, case) -> str:
    from datetime import date

    loinc_nrs = URIRef("https://w3id.org/necessity/code/loinc/72514-3")
    function_scales = URIRef("https://w3id.org/necessity/valueset/function-scales")
    D = data.value(case.request, NR.requestedDate).toPython()
    patient = data.value(case.node, NR.patient)
    nrs, function = [], False
    for s in data.subjects(NR.subject, patient):
        when = data.value(s, NR.effectiveDate)
        if when is None or not isinstance(when.toPython(), date) or when.toPython() > D:
            continue
        code = data.value(s, NR.code)
        if code == loinc_nrs and data.value(s, NR.value) is not None:
            nrs.append((when.toPython(), float(data.value(s, NR.value))))
        if code is not None and (code, NR.inValueSet, function_scales) in data:
            function = True
    if function:
        return "met"
    if not nrs:
        return "missing"
    latest = max(d for d, _ in nrs)
    return "unmet" if any(v < 6 for d, v in nrs if d == latest) else "met"


@pytest.fixture(scope="session")
def worked_diff(reasoner, cache):
    return run_diff(reasoner, find_cases(None, ROOT), LCD, COMMERCIAL, cache=cache)


def test_worked_diff_flips_what_the_case_facts_predict(worked_diff, reasoner, cache):
    flips = {c.case: (c.from_outcome, c.to_outcome) for c in worked_diff.flips()}
    assert flips == expected_flips(reasoner, cache)
    # the flips explained in docs/authoring.md, "Worked example", step 3
    documented = {"repeat-responder-short-relief": ("denied", "approved"),
                  "fhir-denied-repeat-short-relief": ("denied", "approved"),
                  "fhir-approved-right-s1-ct": ("approved", "pended")}
    for name, flip in documented.items():
        if (CASES / name).exists():
            assert flips[name] == flip, name


def test_worked_diff_names_the_shapes_that_differ(worked_diff):
    by_ref = {s.ref: s for s in worked_diff.shapes}
    assert by_ref["ESI-CI-3"].to_shapes == ["commercial-esi-example:ESI-CI-3-unmet-no-failure-or-intolerance"]
    assert any("[-BIND(28-]{+BIND(42+}" in d for d in by_ref["ESI-CI-3"].details)
    assert any("[-BIND(90-]{+BIND(14+}" in d for d in by_ref["ESI-CI-8"].details)
    assert by_ref["COM-SEV-1"].change == "added"


def test_diff_cli_text_and_json(tmp_path):
    cases = [str(CASES / n) for n in ("repeat-responder-short-relief", "seed-l5-snrb") if (CASES / n).exists()]
    runner = CliRunner()
    text = runner.invoke(main, ["diff", *cases, "--from", LCD, "--to", COMMERCIAL])
    assert text.exit_code == 0, text.output
    assert "outcome flips:" in text.output and "criteria whose shapes differ:" in text.output
    # .stdout: progress lines may go to standard error on a slow machine (issue 10 point 5)
    data = json.loads(runner.invoke(main, ["diff", *cases, "--from", LCD, "--to", COMMERCIAL,
                                           "--format", "json"]).stdout)
    if "repeat-responder-short-relief" in " ".join(cases):
        assert "repeat-responder-short-relief" in data["flipped"]
    bad = runner.invoke(main, ["diff", *cases, "--from", "lcd-l39240@no-such-version", "--to", COMMERCIAL])
    assert bad.exit_code == 2 and "unknown version" in bad.output


def test_boundary_case_flips_on_six_weeks_of_conservative_care(reasoner, tmp_path):
    """docs/authoring.md, step 4: no case in cases/ has 28-41 days of failed conservative care,
    so the 4 -> 6 weeks change flips nothing there. A boundary case (35 days) shows the flip."""
    source = CASES / "same-day-facet-synovial-cyst" / "case.ttl"
    assert source.exists(), f"{source} is part of the repo"
    text = source.read_text()
    assert text.count('nr:periodStart "2026-02-02"^^xsd:date') == 1
    assert text.count('nr:periodStart "2026-02-09"^^xsd:date') == 1
    text = text.replace('nr:periodStart "2026-02-02"^^xsd:date', 'nr:periodStart "2026-02-16"^^xsd:date')
    text = text.replace('nr:periodStart "2026-02-09"^^xsd:date', 'nr:periodStart "2026-02-16"^^xsd:date')
    folder = tmp_path / "boundary-35-days"
    folder.mkdir()
    (folder / "case.ttl").write_text(text)
    report = run_diff(reasoner, [folder], LCD, COMMERCIAL)
    [case] = report.cases
    assert (case.from_outcome, case.to_outcome) == ("approved", "denied")
    assert {"ref": "ESI-CI-3", "from": "met", "to": "unmet"} in case.changed


# ---------------------------------------------------------------------- issue 10 point 5


def test_diff_headline_counts_what_it_lists():
    from reasoner.authoring.diff import CaseDiff, DiffReport

    cases = [
        CaseDiff("flip", "a@1", "b@1", "denied", "approved", [{"ref": "X-1", "from": "unmet", "to": "met"}]),
        CaseDiff("changed", "a@1", "b@1", "pended", "pended", [{"ref": "X-2", "from": "met", "to": "missing"}]),
        CaseDiff("one-sided", "a@1", "b@1", "approved", "approved", [{"ref": "X-3", "from": None, "to": "met"}]),
        CaseDiff("same", "a@1", "b@1", "approved", "approved", []),
    ]
    text = DiffReport("a", "b", cases, []).render_text()
    headline = text.splitlines()[0]
    assert headline == ("diff a -> b: 4 case(s) decided; 1 outcome flip(s) and 1 case(s) with "
                        "changed verdicts but the same outcome, listed below; 1 more differ only "
                        "in criteria of one side that pass there (summarised)")
    flips = text.split("outcome flips:\n")[1].split("\n\n")[0]
    same = text.split("changed verdicts, same outcome:\n")[1].split("\n\n")[0]
    assert [line.split(":")[0].strip() for line in flips.splitlines() if not line.startswith("      ")] == ["flip"]
    assert [line.split(" ")[2] for line in same.splitlines()] == ["changed"]


@pytest.mark.parametrize("command", [["test", "--policy", LCD], ["diff", "--from", LCD, "--to", COMMERCIAL]])
def test_long_commands_print_progress_when_not_on_a_terminal(command, monkeypatch):
    monkeypatch.setenv("REASONER_PROGRESS_SECONDS", "0")
    cases = [str(CASES / n) for n in ("seed-l5-snrb", "approvable-left-l5")]
    result = CliRunner().invoke(main, [command[0], *cases, *command[1:]])
    assert result.exit_code == 0, result.output
    verb = "decided" if command[0] == "test" else "compared"
    assert result.stderr.splitlines() == [f"{verb} 1/2 cases", f"{verb} 2/2 cases"]
    assert "1/2" not in result.stdout  # progress goes to standard error only


def test_progress_is_silent_for_a_quick_run(monkeypatch):
    monkeypatch.setenv("REASONER_PROGRESS_SECONDS", "600")  # a run shorter than the interval
    cases = [str(CASES / "seed-l5-snrb")]
    result = CliRunner().invoke(main, ["test", *cases, "--policy", LCD])
    assert result.exit_code == 0 and result.stderr == ""
