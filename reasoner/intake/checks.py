"""The envelope rules (CONVENTIONS §1): structure, one Patient, one index request, references."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ..engines import fhir as fhir_engine
from ..errors import InputError
from .elements import iter_references
from .envelope import Entry, Flattened
from .tables import Context, matches

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(T.*)?$")


# ---------------------------------------------------------------------------- envelope


def parse_date(value: Any, source: str, entry: Entry, element: str) -> date:
    """The calendar date of a FHIR date/dateTime (time and zone ignored); else InputError."""
    if isinstance(value, str):
        m = _DATE.match(value)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                pass
    raise InputError(f"{value!r} is not a calendar date (YYYY-MM-DD, CONVENTIONS §3)",
                     source=source, place=entry.place(element))



def is_index(ctx: Context, resource: dict) -> bool:
    spec = ctx.table["index_request"]
    return (resource.get("resourceType") == spec["resourceType"]
            and matches(ctx, resource.get("code"), [spec["code"]])
            and resource.get("status") in spec["status"]
            and resource.get("intent") in spec["intent"])


def check_envelope(flat: Flattened, ctx: Context, source: str) -> tuple[Entry, Entry, dict]:
    """§1: structure (R4B), one Patient, one index request, resolvable references.

    Returns (patient entry, index entry, reference index)."""
    for e in flat.entries:
        problem = fhir_engine.validate_resource(e.resource, entry=e.index, full_url=e.full_url)
        if problem is not None:
            raise InputError(problem.message, source=source, place=e.place(problem.element))
    refs: dict[str, Entry] = {}
    for e in flat.entries:
        if e.full_url:
            refs[e.full_url] = e
        rid = e.resource.get("id")
        if rid:
            refs.setdefault(f"{e.rtype}/{rid}", e)
    patients = [e for e in flat.entries if e.rtype == "Patient"]
    if not patients:
        raise InputError("no Patient entry (CONVENTIONS §1 rule 3)", source=source,
                         place="Bundle.entry")
    if len(patients) > 1:
        raise InputError(f"{len(patients)} Patient entries; exactly one allowed (CONVENTIONS §1 "
                         "rule 3)", source=source, place=patients[1].place("Patient"))
    index = [e for e in flat.entries if is_index(ctx, e.resource)]
    if not index:
        raise InputError("no index ServiceRequest (code CPT 64483, status draft or active, "
                         "intent order; CONVENTIONS §1 rule 4)", source=source,
                         place="Bundle.entry")
    if len(index) > 1:
        raise InputError(f"{len(index)} index ServiceRequests (CPT 64483, draft/active, order); "
                         "exactly one allowed (CONVENTIONS §1 rule 4)", source=source,
                         place=index[1].place("ServiceRequest.code"))
    patient = patients[0]
    for e in flat.entries:
        for ref, where in iter_references(e.resource, e.rtype):
            target = refs.get(ref)
            if target is None:
                if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
                    raise InputError(f"reference {ref} is not the fullUrl of an entry in the "
                                     "Bundle (CONVENTIONS §1 rule 2)", source=source,
                                     place=e.place(where + ".reference"))
                continue  # outside references are ignored (§1 rule 2)
            if where in (f"{e.rtype}.subject", f"{e.rtype}.patient") and target is not patient \
                    and e.rtype not in ctx.table["context_resource_types"]:
                raise InputError(f"{where} points to {target.rtype} {ref}, not to the Patient "
                                 "(CONVENTIONS §1 rule 3)", source=source,
                                 place=e.place(where + ".reference"))
    return patient, index[0], refs

