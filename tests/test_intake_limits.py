"""Issue 8 point 6-7: hostile or unreadable input ends with one line and exit 2, naming the
limit or what was found (never exit 4, never a hang)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reasoner.case import load_case
from reasoner.errors import InputError
from reasoner.intake import envelope

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "cases" / "fhir-example-approvable-left-l5" / "bundle.json"


def refusal(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_case(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert info.value.exit_code == 2
    return message


def test_deeply_nested_json_names_the_limit(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # beyond Python's recursion limit
    assert "limit" in refusal(deep)
    nested = tmp_path / "nested.json"
    body = '{"a":' * (envelope.MAX_DEPTH + 5) + "1" + "}" * (envelope.MAX_DEPTH + 5)
    nested.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
                      + body + "}]}")
    assert f"nesting limit {envelope.MAX_DEPTH}" in refusal(nested)


def test_too_many_entries_names_the_limit(tmp_path):
    b = {"resourceType": "Bundle", "type": "collection",
         "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
                    "resource": {"resourceType": "Basic", "code": {"text": "x"}}}
                   for i in range(envelope.MAX_ENTRIES + 1)]}
    path = tmp_path / "many.json"
    path.write_text(json.dumps(b))
    assert f"limit of {envelope.MAX_ENTRIES} entries" in refusal(path)


def test_file_over_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(envelope, "MAX_BYTES", 2_000_000)
    path = tmp_path / "big.json"
    path.write_text('{"resourceType": "Bundle", "type": "collection", "x": "' + "a" * 3_000_000 + '"}')
    assert "size limit" in refusal(path)


def test_contained_resources_containing_each_other_end_cleanly(tmp_path):
    b = json.loads(BASE.read_text())
    patient = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")
    inner = {"resourceType": "Patient", "id": "b"}
    patient["contained"] = [{"resourceType": "Patient", "id": "a", "contained": [inner]}]
    inner["contained"] = [{"resourceType": "Patient", "id": "c", "link": [{"other": {"reference": "#a"}, "type": "seealso"}]}]
    path = tmp_path / "contained.json"
    path.write_text(json.dumps(b))
    try:
        load_case(path)
    except InputError as exc:
        assert "\n" not in str(exc) and exc.exit_code == 2


def test_fhir_xml_is_named(tmp_path):
    path = tmp_path / "bundle.xml"
    path.write_text('<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>')
    assert "FHIR XML" in refusal(path)
    as_json = tmp_path / "xml.json"
    as_json.write_text(path.read_text())
    assert "FHIR XML" in refusal(as_json)


def test_deep_json_exits_2_from_the_command_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    exe = Path(sys.executable).with_name("reasoner")
    command = [str(exe)] if exe.exists() else [shutil.which("reasoner") or "reasoner"]
    proc = subprocess.run(command + ["determine", str(path), "--policy", "lcd-l39240"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "limit" in lines[0] and "Traceback" not in proc.stderr


def test_too_many_facts_names_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("reasoner.intake.mapper.MAX_FACTS", 30)
    b = json.loads(BASE.read_text())
    obs = next(e for e in b["entry"] if "72514-3" in json.dumps(e["resource"].get("code")))
    for i in range(40):
        twin = json.loads(json.dumps(obs))
        twin["fullUrl"] = f"urn:uuid:00000000-0000-4000-8000-{i:012d}"
        b["entry"].append(twin)
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(b))
    assert "limit of 30 facts" in refusal(path)
