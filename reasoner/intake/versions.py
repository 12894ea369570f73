"""Naming the FHIR version of content that is not R4 (STU3 3.0, DSTU2 1.0).

The markers are the table's `versions` key (`fhir-mapping.json`): resource types that exist
only in that version (FHIR STU3 and DSTU2 resource lists; e.g. DSTU2 MedicationOrder,
STU3 ProcedureRequest, both renamed or removed in R4) and elements whose form differs
(STU3/DSTU2 `Condition.clinicalStatus` is a code, R4 a CodeableConcept; DSTU2
`Condition.patient`, R4 `subject`); and `meta.profile` / `fhirVersion` strings naming a
version. Called before R4 validation, so the refusal names the version, not an element.
"""

from __future__ import annotations

from typing import Any, Iterator

from .tables import load_table


def _resources(data: dict) -> Iterator[tuple[int | None, dict]]:
    if data.get("resourceType") == "Bundle" and isinstance(data.get("entry"), list):
        for i, e in enumerate(data["entry"]):
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                yield i, e["resource"]
    else:
        yield None, data


def _marker(resource: dict, spec: dict) -> str | None:
    rtype = resource.get("resourceType")
    if rtype in spec.get("resource_types", []):
        return f"resource type {rtype}"
    for path, kind in spec.get("elements", {}).items():
        rt, _, element = path.partition(".")
        if rt != rtype or element not in resource:
            continue
        value = resource[element]
        if kind == "present" or (kind == "string" and isinstance(value, str)):
            return f"{path} as {'a code' if kind == 'string' else 'an element'}"
    profiles = (resource.get("meta") or {}).get("profile") or []
    for text in spec.get("profile_markers", []):
        if any(isinstance(p, str) and text in p for p in profiles):
            return f"meta.profile {text}"
    return None


def _find(data: Any) -> tuple[str, str] | None:
    if not isinstance(data, dict):
        return None
    table = load_table()["versions"]
    for i, resource in _resources(data):
        for version in ("DSTU2", "STU3"):
            why = _marker(resource, table[version])
            if why:
                return version, why + (f" in entry {i}" if i is not None else "")
    return None


def detect(data: Any) -> str | None:
    """"STU3" or "DSTU2" when the content carries a marker of that version, else None."""
    hit = _find(data)
    return hit[0] if hit else None


def why(data: Any) -> str:
    hit = _find(data)
    return hit[1] if hit else ""
