"""Adapter around `fhir.resources` (the only module that imports it).

FHIR R4 JSON is checked with the library's R4B models (identical to R4 for every resource the
conventions use; `fhir.resources` 8.x defaults to R5, engineering notes). Structure and
cardinality only: terminology is the mapper's business (`reasoner.intake.fhir`).

Every failure becomes one line naming the entry (index and fullUrl) and the element, e.g.
``entry 26 (urn:uuid:…): ServiceRequest.occurrenceDateTime: not a valid date or dateTime``.
A resource that R4B rejects but R5 accepts is reported as R5-shaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import ValidationError


@dataclass
class StructureProblem:
    """One structural problem: where (entry index, fullUrl, element path) and what."""

    entry: int | None
    full_url: str | None
    element: str
    message: str

    def place(self) -> str:
        if self.entry is None:
            return self.element
        url = f" ({self.full_url})" if self.full_url else ""
        return f"entry {self.entry}{url} {self.element}".strip()


@lru_cache(maxsize=None)
def _r4b_class(resource_type: str):
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


@lru_cache(maxsize=None)
def _r5_class(resource_type: str):
    from fhir.resources import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def is_resource_type(resource_type: str) -> bool:
    """Is this an R4 resource type (R4B models)?"""
    return _r4b_class(resource_type) is not None


def _loc_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _one_line(error: dict) -> str:
    msg = str(error.get("msg", "invalid"))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "element not defined in FHIR R4"
    if kind == "missing":
        return "required element missing"
    msg = msg.replace("Value error, ", "")
    if "date" in msg.lower():
        return "not a valid FHIR date or dateTime (" + " ".join(msg.split())[:120] + ")"
    return " ".join(msg.split())[:160]


def validate_resource(resource: dict[str, Any], *, entry: int | None = None,
                      full_url: str | None = None) -> StructureProblem | None:
    """Check one resource against its R4B model; None if it is well-formed."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return StructureProblem(entry, full_url, "resource.resourceType", "no resourceType")
    cls = _r4b_class(rtype)
    if cls is None:
        if _r5_class(rtype) is not None:
            return StructureProblem(entry, full_url, rtype,
                                    f"{rtype} is an R5 resource type; FHIR R4 is required")
        return StructureProblem(entry, full_url, rtype, f"unknown FHIR resource type {rtype!r}")
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        element = rtype + ("." + _loc_path(first.get("loc", ())) if first.get("loc") else "")
        element = element.replace(f"{rtype}.[", f"{rtype}[")
        if is_r5_shaped(resource, errors):
            return StructureProblem(
                entry, full_url, element,
                "R5-shaped: this element has the FHIR R5 form, not R4; send FHIR R4 (4.0.1) JSON")
        if _valid_stu3(resource):
            return StructureProblem(
                entry, full_url, element,
                "STU3-shaped: this resource is FHIR STU3 (3.0), not R4; send FHIR R4 (4.0.1) JSON")
        return StructureProblem(entry, full_url, element, _one_line(first))
    except Exception as exc:  # the library raises a few non-pydantic errors on odd input
        return StructureProblem(entry, full_url, rtype, " ".join(str(exc).split())[:160])
    return None


@lru_cache(maxsize=None)
def _stu3_class(resource_type: str):
    try:
        from fhir.resources.STU3 import get_fhir_model_class

        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def _valid_stu3(resource: dict[str, Any]) -> bool:
    """Does the resource R4B rejected validate as FHIR STU3?"""
    cls = _stu3_class(str(resource.get("resourceType")))
    if cls is None:
        return False
    try:
        cls.model_validate(resource)
        return True
    except Exception:
        return False


def is_r5_shaped(resource: dict[str, Any], r4_errors: list[dict] | None = None) -> bool:
    """True if what R4B rejected is FHIR R5: the whole resource validates as R5, or an element
    R4B rejects (e.g. ServiceRequest.code as a CodeableReference, MedicationStatement.medication)
    is valid in R5. Used only after R4B rejected the resource."""
    cls = _r5_class(str(resource.get("resourceType")))
    if cls is None:
        return False
    try:
        cls.model_validate(resource)
        return True
    except ValidationError as exc:
        r5_bad = {e["loc"][0] for e in exc.errors() if e.get("loc") and e.get("type") != "missing"}
    except Exception:
        return False
    r4_bad = {e["loc"][0] for e in (r4_errors or []) if e.get("loc") and e.get("type") != "missing"}
    r4_bad = {f for f in r4_bad if isinstance(f, str) and f in resource}
    return bool(r4_bad) and not (r4_bad & r5_bad)


def validate_bundle_shell(bundle: dict[str, Any]) -> StructureProblem | None:
    """Check the Bundle envelope (without its resources) against the R4B Bundle model."""
    shell = dict(bundle)
    entries = shell.get("entry")
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ]
    cls = _r4b_class("Bundle")
    try:
        cls.model_validate(shell)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc", ())
        entry = loc[1] if len(loc) > 1 and loc[0] == "entry" and isinstance(loc[1], int) else None
        return StructureProblem(entry, None, "Bundle." + _loc_path(loc), _one_line(first))
    return None


def validate_entries(entries: list[tuple[int, str | None, dict[str, Any]]]) -> StructureProblem | None:
    """Validate each (index, fullUrl, resource); the first problem, or None."""
    for index, full_url, resource in entries:
        problem = validate_resource(resource, entry=index, full_url=full_url)
        if problem is not None:
            return problem
    return None
