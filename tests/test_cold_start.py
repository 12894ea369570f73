"""Heavy imports only where used (issue 9, "Instant start"): the help, the version and an
error on a missing file load neither the knowledge base nor the RDF, SHACL, OWL or store
libraries. Checked on `sys.modules` of a real process, after the command has run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("rdflib", "pyshacl", "owlready2", "pyoxigraph", "pydantic", "fhir", "starlette",
         "uvicorn", "jinja2", "reasoner.kb", "reasoner.api")

PROBE = """
import json, sys
from reasoner.cli.app import main
code = 0
try:
    main(sys.argv[1:], prog_name="reasoner")
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] if not m.startswith("reasoner.") else m for m in sys.modules})
sys.__stdout__.write("\\n" + json.dumps({"code": code, "modules": heavy}) + "\\n")
"""


def probe(*args: str) -> tuple[dict, str, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    *text, last = proc.stdout.rstrip("\n").split("\n")
    return json.loads(last), "\n".join(text), proc.stderr


@pytest.mark.parametrize("args", [
    ["--help"],
    ["--version"],
    ["determine", "--help"],
    ["batch", "--help"],
    ["determine", "nosuch.ttl"],
    ["determine", "nosuch.ttl", "--policy", "clinical-snrb", "--format", "json"],
    ["validate", "no/such/case"],
], ids=lambda a: " ".join(a))
def test_no_heavy_import(args):
    result, out, err = probe(*args)
    loaded = [m for m in HEAVY if m in result["modules"]]
    assert loaded == [], f"{' '.join(args)} imported {loaded}"
    if "--help" in args:
        assert result["code"] in (0, None) and "Usage:" in out
    elif "--version" in args:
        assert result["code"] in (0, None) and "version" in out
    else:
        assert result["code"] == 2
        assert err.strip() == f"error: {args[1]}: file not found"


def test_the_probe_sees_heavy_imports():
    """The check above can fail: a command that does load the knowledge base shows it."""
    result, _, err = probe("policies", "--format", "json")
    assert result["code"] in (0, None), err
    assert "rdflib" in result["modules"] and "reasoner.kb" in result["modules"]
