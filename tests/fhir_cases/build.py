"""Writes the FHIR cases `cases/fhir-*/` (bundle.json, expected.json, some case.ttl).

    python -m tests.fhir_cases.build          # (re)write every case folder (from the repo root)

Each case of the scenario modules is emitted as a FHIR R4 collection Bundle (or wrapped as a CDS
Hooks request or a Da Vinci PAS request Bundle, `fhir.py`) and, for the cases in TURTLE, as the
same case written directly in the case vocabulary (`ttl.py`, independently of the FHIR mapper)
for the equivalence test. The four worked examples of the contract live in
`cases/fhir-example-*/bundle.json` (written by hand, not by this script); this script writes
their expected verdicts beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

# the scenario modules register their cases in CASES_SPEC when imported, in this order
from . import scenarios_diagnosis  # noqa: F401
from . import scenarios_treatment  # noqa: F401
from . import scenarios_repeats  # noqa: F401
from . import scenarios_intake  # noqa: F401
from .common import BASE_EXPECTED, CASES, CASES_SPEC
from .fhir import to_fhir
from .ttl import to_turtle

# cases also written in Turtle (equivalence test)
TURTLE = {"fhir-approved-right-s1-ct", "fhir-denied-imaging-wrong-side",
          "fhir-pended-no-reason-condition", "fhir-denied-ultrasound-no-contrast",
          "fhir-approved-repeat-responder", "fhir-denied-fifth-session",
          "fhir-approved-29-feb-window-edge"}

# ---------------------------------------------------------------------------- examples

EXAMPLES_EXPECTED = {
    "seed-l5-snrb": ("denied", {"ESI-CI-1": "unmet", "ESI-CI-2": "missing", "ESI-CI-4": "missing",
                                "ESI-LIM-1": "missing", "ESI-CI-5": "missing"},
                     "Worked example: ESI-CI-1 unmet (no compressive lesion for left L5); ESI-CI-2, "
                     "ESI-CI-4/LIM-1, ESI-CI-5 missing. Prior 64635/64636/20552/64445 are not ESIs "
                     "(no session in W: ESI-CI-8/9, LIM-12 n/a). S = left only: ESI-CI-7 n/a."),
    "approvable-left-l5": ("approved", {}, "Worked example: all applicable criteria met."),
    "missing-baseline-score": ("pended", {"ESI-CI-2": "missing"},
                               "Worked example: no pain or function scale."),
    "three-levels": ("denied", {"ESI-CI-6": "unmet", "ESI-LIM-8": "unmet"},
                     "Worked example: three roots, N = 3 > 2; imaging concordant for all three."),
}


def outcome_of(verdicts: dict) -> str:
    values = set(verdicts.values())
    return "denied" if "unmet" in values else "pended" if "missing" in values else "approved"


def write(folder: Path, bundle: dict, scenario: str, outcome: str, changes: dict, ttl: str | None):
    verdicts = dict(BASE_EXPECTED, **changes)
    assert outcome_of(verdicts) == outcome, (folder.name, outcome, changes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundle.json").write_text(json.dumps(bundle, indent=1) + "\n")
    expected = {"scenario": scenario, "source": "FHIR R4 (docs/fhir-contract.md); verdicts worked "
                "out by hand from docs/fhir-contract.md §5 and docs/policies/lcd-l39240.md",
                "expected": {"lcd-l39240": {"outcome": outcome, "criteria": verdicts}}}
    (folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    if ttl is not None:
        (folder / "case.ttl").write_text(ttl)
    elif (folder / "case.ttl").exists():
        (folder / "case.ttl").unlink()


def main() -> None:
    ids = [c[0] for c in CASES_SPEC]
    assert len(ids) == len(set(ids)), "duplicate case id"
    for cid, s, outcome, changes, why in CASES_SPEC:
        write(CASES / cid, to_fhir(cid, s), why, outcome, changes,
              to_turtle(cid, s) if cid in TURTLE else None)
    for name, (outcome, changes, why) in EXAMPLES_EXPECTED.items():
        folder = CASES / f"fhir-example-{name}"
        bundle = json.loads((folder / "bundle.json").read_text())
        write(folder, bundle, why, outcome, changes, None)
    print(f"wrote {len(CASES_SPEC)} cases + {len(EXAMPLES_EXPECTED)} examples under {CASES}")


if __name__ == "__main__":
    main()
