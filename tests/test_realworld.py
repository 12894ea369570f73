"""The public-artefact corpus (`cases/realworld/`, issue 8 point 10), run as a user runs it.

Each folder holds one artefact nobody here wrote (Da Vinci PAS and CRD fixtures and examples,
US Core and FHIR specification examples, Synthea records, a Bulk Data NDJSON file), or a
minimally edited copy of one, with `provenance.json` and `expected.json`. The expectation is
one of:

* `{"policy", "outcome", "criteria", "why"}`: a determination; the outcome and every listed
  criterion verdict must match (criteria not listed are not checked);
* `{"refusal": {"exit": 2, "contains": [...]}}`: bad input, ended with exit 2 and one line
  on stderr containing every listed substring;
* `{"one_of": [...]}`: any one of the expectations above (FHIR XML and NDJSON may be read
  or named).

Every artefact runs through the command line in a subprocess
(`python -m reasoner determine FILE --policy P --format json`); none may print a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "cases" / "realworld"
META = {"provenance.json", "expected.json"}
DEFAULT_POLICY = "lcd-l39240"


def _folders() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir())


def _artefact(folder: Path) -> Path:
    files = [p for p in folder.iterdir() if p.is_file() and p.name not in META]
    assert len(files) == 1, f"{folder.name}: expected one artefact beside the metadata, found {files}"
    return files[0]


FOLDERS = _folders()


def test_corpus_size():
    """At least 30 artefacts, each with its artefact, provenance and expectation."""
    assert len(FOLDERS) >= 30, len(FOLDERS)
    assert len(FOLDERS) == 43, "update this count when artefacts are added or removed"
    for folder in FOLDERS:
        assert (folder / "expected.json").is_file() and (folder / "provenance.json").is_file(), folder.name
        _artefact(folder)


def test_provenance_complete():
    """Every artefact names where it came from, under which licence, and every edit."""
    for folder in FOLDERS:
        prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
        for key in ("repository", "path", "commit", "licence", "licence_url", "url", "kind", "what", "edits"):
            assert prov.get(key) not in (None, ""), f"{folder.name}: provenance lacks {key}"
        assert len(prov["commit"]) == 40, folder.name
        assert prov["file"] == _artefact(folder).name, folder.name
        if prov.get("original_kept_in"):
            assert prov["edits"], f"{folder.name}: an edited copy lists its edits"
            assert (CORPUS / prov["original_kept_in"]).is_dir(), folder.name
        assert _artefact(folder).stat().st_size < 300_000, folder.name
    assert sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file()) < 5_000_000


def _policy(expected: dict) -> str:
    for alt in expected.get("one_of", [expected]):
        if "policy" in alt:
            return alt["policy"]
    return DEFAULT_POLICY


@lru_cache(maxsize=None)
def _run(path: str, policy: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reasoner", "determine", path, "--policy", policy, "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)


def _mismatch(expected: dict, proc: subprocess.CompletedProcess, path: Path) -> str | None:
    """None when the run meets the expectation, else what differs."""
    err = proc.stderr.strip()
    if "refusal" in expected:
        want = expected["refusal"]
        if proc.returncode != want["exit"]:
            return f"exit {proc.returncode}, expected {want['exit']} (stderr: {err[:300]!r})"
        if not err or "\n" in err:
            return f"stderr is not one line: {err[:500]!r}"
        # the message names the file; its path must not be what satisfies the substrings
        # ("pas-inquiry/" holds "inquiry")
        text = err.replace(str(path.relative_to(ROOT)), "<file>").replace(str(path), "<file>")
        text = text.replace(path.name, "<file>").replace(path.parent.name, "<folder>")
        missing = [s for s in want["contains"] if s not in text]
        return f"stderr {err!r} lacks {missing}" if missing else None
    if proc.returncode != 0:
        return f"exit {proc.returncode}, expected a determination (stderr: {err[:300]!r})"
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        return f"stdout is not JSON: {exc}"
    problems = []
    if out.get("outcome") != expected["outcome"]:
        problems.append(f"outcome {out.get('outcome')!r}, expected {expected['outcome']!r}")
    got = {c.get("ref"): c.get("status") for c in out.get("criteria", [])}
    for ref, status in expected["criteria"].items():
        if got.get(ref) != status:
            problems.append(f"{ref} {got.get(ref)!r}, expected {status!r} ({expected['why'][ref]})")
    return "; ".join(problems) or None


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_realworld(folder: Path):
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    path = _artefact(folder)
    proc = _run(str(path.relative_to(ROOT)), _policy(expected))
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 2), f"exit {proc.returncode}: {proc.stderr.strip()[:500]}"
    alternatives = expected.get("one_of", [expected])
    mismatches = [_mismatch(alt, proc, path) for alt in alternatives]
    assert None in mismatches, " | ".join(m for m in mismatches if m)
