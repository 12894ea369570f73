"""`reasoner test`: decide cases, compare with each case's `expected.json`, and tally criterion
coverage (which cases make each criterion met, unmet, missing or not applicable)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rdflib.namespace import RDFS

from ..errors import InputError
from ..model import reference_sort_key
from ..vocab import NR
from .cases import DeterminationCache, _case_folder
from .project import _short

# ====================================================================== test


STATUSES = ("met", "unmet", "missing", "not-applicable")


@dataclass
class Expectation:
    policy: str
    outcome: str | None
    verdicts: dict[str, str]
    version: str | None = None


def read_expectations(path: Path, default_policy: str | None = None) -> list[Expectation]:
    """The expectations in a case's `expected.json`.

    Accepted layouts (docs/authoring.md): one object `{"policy", "outcome", "criteria"}`, where
    `criteria` maps reference id -> status or is a list of `{"ref"|"id", "status"}`; a list of
    such objects; or an object keyed by policy id (`{"lcd-l39240": {...}}`) or holding them under
    `"policies"`/`"expectations"`.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable expected.json: {exc}", source=str(path)) from None
    return _expectations(data, default_policy, str(path))


def _expectations(data, policy, source) -> list[Expectation]:
    if isinstance(data, list):
        out = []
        for item in data:
            out += _expectations(item, policy, source)
        return out
    if not isinstance(data, dict):
        raise InputError("expected.json: not an object or list", source=source)
    for key in ("expected", "expectations", "policies", "determinations"):
        if key in data:
            inner = data[key]
            if isinstance(inner, dict):
                return [e for pid, v in inner.items() for e in _expectations(v, pid, source)]
            return _expectations(inner, data.get("policy", policy), source)
    if "outcome" not in data and "criteria" not in data and "verdicts" not in data:
        out = []
        for pid, value in data.items():
            if isinstance(value, dict) and ("outcome" in value or "criteria" in value or "verdicts" in value):
                out += _expectations(value, pid, source)
        return out
    pol = data.get("policy") or data.get("policy_id") or policy
    if isinstance(pol, dict):
        pol = pol.get("id")
    verdicts = {}
    criteria = data.get("criteria", data.get("verdicts", {}))
    if isinstance(criteria, dict):
        for ref, status in criteria.items():
            verdicts[ref] = status.get("status") if isinstance(status, dict) else status
    elif isinstance(criteria, list):
        for item in criteria:
            verdicts[item.get("ref") or item.get("id")] = item.get("status") or item.get("verdict")
    if pol is None:
        return []
    return [Expectation(pol, data.get("outcome"), verdicts, data.get("version"))]


@dataclass
class Mismatch:
    case: str
    policy: str
    what: str  # "outcome" or a reference id
    expected: str | None
    actual: str | None

    def to_dict(self):
        return asdict(self)


@dataclass
class TestReport:
    cases: list[str]
    decided: int
    mismatches: list[Mismatch]
    compared: int
    # policy -> criterion IRI -> {"ref", "label", "versions", status -> [case ids]}
    coverage: dict[str, dict[str, dict]]
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.errors

    def unexercised(self) -> dict[str, list[dict]]:
        """Criteria no case makes met, unmet or missing (always not applicable, or never decided)."""
        out = {}
        for policy, crits in self.coverage.items():
            rows = [c for c in crits.values() if not any(c[s] for s in ("met", "unmet", "missing"))]
            if rows:
                out[policy] = rows
        return out

    def gaps(self) -> dict[str, list[tuple[dict, list[str]]]]:
        """Per pack, criteria with a reachable verdict no case produces. Reachable: unmet if the
        criterion has an unmet condition, missing if it has a missing condition, met if it has
        either (a criterion with only not-applicable conditions is informational)."""
        out = {}
        for policy, crits in self.coverage.items():
            rows = []
            for c in crits.values():
                lacking = [s for s in c["reachable"] if not c[s]]
                if lacking:
                    rows.append((c, lacking))
            if rows:
                out[policy] = sorted(rows, key=lambda r: (reference_sort_key(r[0]["ref"]), r[0]["iri"]))
        return out

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "cases": self.cases,
            "decided": self.decided,
            "compared": self.compared,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "errors": self.errors,
            "coverage": {p: sorted(c.values(), key=lambda r: (reference_sort_key(r["ref"]), r["iri"]))
                         for p, c in sorted(self.coverage.items())},
            "unexercised": {p: [r["iri"] for r in rows] for p, rows in self.unexercised().items()},
            "gaps": {p: [{"iri": r["iri"], "ref": r["ref"], "lacking": lacking} for r, lacking in rows]
                     for p, rows in self.gaps().items()},
        }

    def render_text(self, verbose: bool = False) -> str:
        out = []
        for m in self.mismatches:
            out.append(f"MISMATCH {m.case} [{m.policy}] {m.what}: expected {m.expected}, got {m.actual}")
        for e in self.errors:
            out.append(f"ERROR {e}")
        out.append(f"{len(self.cases)} case(s), {self.decided} determination(s), {self.compared} "
                   f"compared with expected.json, {len(self.mismatches)} mismatch(es), "
                   f"{len(self.errors)} error(s)")
        for policy, crits in sorted(self.coverage.items()):
            out.append("")
            out.append(f"coverage of {policy} (cases per verdict; unmet and missing cases named"
                       f"{'' if verbose else ', --verbose names all'}):")
            for row in sorted(crits.values(), key=lambda r: (reference_sort_key(r["ref"]), r["iri"])):
                counts = " ".join(f"{s}={len(row[s])}" for s in STATUSES)
                out.append(f"  {row['ref']:<12} {counts:<48} versions: {', '.join(row['versions'])}")
                for s in STATUSES:
                    if row[s] and (verbose or s in ("unmet", "missing")):
                        out.append(f"      {s}: {', '.join(row[s])}")
        out.append("")
        unex = self.unexercised()
        if unex:
            out.append("criteria no case exercises (never met, unmet or missing):")
            for policy, rows in sorted(unex.items()):
                for row in sorted(rows, key=lambda r: reference_sort_key(r["ref"])):
                    out.append(f"  {policy} {row['ref']} <{row['iri']}> (versions: {', '.join(row['versions'])})")
        else:
            out.append("every criterion is exercised by at least one case")
        gaps = self.gaps()
        if gaps:
            out.append("reachable verdicts no case produces:")
            for policy, rows in sorted(gaps.items()):
                for row, lacking in rows:
                    out.append(f"  {policy} {row['ref']} <{row['iri']}>: never {', '.join(lacking)}")
        out.append("PASS" if self.passed else "FAIL")
        return "\n".join(out) + "\n"




def run_tests(reasoner, case_paths: list[Path], policy: str | None = None,
              all_versions: bool = False, cache: "DeterminationCache | None" = None,
              progress: Callable[[int, int], None] | None = None) -> TestReport:
    """Decide every case, compare with `expected.json`, and tally criterion coverage.

    Each case is decided under every pack in scope (`policy`, else all packs), under the version
    in force on its service date (and, with `all_versions`, under every other version too: for
    coverage only). Expectations are compared where `expected.json` names the pack.
    """
    kb = reasoner.kb
    policies = [policy] if policy else sorted(kb.packs)
    for pid in policies:
        kb.pack(pid)  # unknown policy -> InputError
    coverage: dict[str, dict[str, dict]] = {}
    for pid in policies:
        pack = kb.pack(pid)
        rows = coverage.setdefault(pid, {})
        for v in pack.versions:
            for crit in v.criteria:
                kinds = {pack.graph.value(sh, NR.conditionKind) for sh in pack.graph.subjects(NR.conditionOf, crit)}
                reachable = [s for s, k in (("unmet", NR.UnmetCondition), ("missing", NR.MissingCondition))
                             if k in kinds]
                row = rows.setdefault(str(crit), {
                    "iri": str(crit), "ref": str(pack.graph.value(crit, NR.referenceId) or _short(crit)),
                    "label": str(pack.graph.value(crit, RDFS.label) or ""), "versions": [],
                    "reachable": (["met"] + reachable) if reachable else [],
                    **{s: [] for s in STATUSES}})
                row["versions"].append(v.version)
    cache = cache or DeterminationCache(reasoner)
    mismatches, errors, names = [], [], []
    decided = compared = 0
    for done, path in enumerate(case_paths, 1):
        if progress and done > 1:
            progress(done - 1, len(case_paths))
        folder = _case_folder(path)
        try:
            case = cache.case(path)
        except Exception as exc:  # a broken case is reported, the others still run
            errors.append(f"{path}: {exc}")
            continue
        names.append(case.id)
        expected_path = folder / "expected.json"
        expectations = read_expectations(expected_path) if expected_path.exists() else []
        by_policy = {e.policy: e for e in expectations}
        for pid in policies:
            pack = kb.pack(pid)
            exp = by_policy.get(pid)
            try:
                d = cache.determine(path, pid, exp.version if exp else None)
            except Exception as exc:
                errors.append(f"{case.id} [{pid}]: {exc}")
                continue
            decided += 1
            _tally(coverage[pid], d, case.id)
            if all_versions:
                for v in pack.versions:
                    if v.version != d.policy.version:
                        _tally(coverage[pid], cache.determine(path, pid, v.version), f"{case.id}@{v.version}")
                        decided += 1
            if exp is None:
                continue
            compared += 1
            if exp.outcome is not None and exp.outcome != d.outcome:
                mismatches.append(Mismatch(case.id, pid, "outcome", exp.outcome, d.outcome))
            actual = d.verdicts()
            for ref, status in sorted(exp.verdicts.items(), key=lambda kv: reference_sort_key(kv[0])):
                if actual.get(ref) != status:
                    mismatches.append(Mismatch(case.id, pid, ref, status, actual.get(ref)))
    if progress and case_paths:
        progress(len(case_paths), len(case_paths))
    return TestReport(names, decided, mismatches, compared, coverage, errors)


def _tally(rows: dict[str, dict], d, label: str) -> None:
    for c in d.criteria:
        row = rows.get(c.id)
        if row is not None and label not in row[c.status]:
            row[c.status].append(label)


# ====================================================================== diff
