"""The envelope rules (docs/fhir-contract.md §1): structure, one Patient, one index request, references."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ..engines import fhir as fhir_engine
from ..errors import InputError
from .elements import codings, iter_references
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
    raise InputError(f"{value!r} is not a calendar date (YYYY-MM-DD, input contract, section 3)",
                     source=source, place=entry.place(element))



def is_index(ctx: Context, resource: dict) -> bool:
    spec = ctx.table["index_request"]
    return (resource.get("resourceType") == spec["resourceType"]
            and matches(ctx, resource.get("code"), [spec["code"]])
            and resource.get("status") in spec["status"]
            and resource.get("intent") in spec["intent"])


def candidate_requests(ctx: Context, entries: list[Entry],
                       covered_only: bool = False) -> list[Entry]:
    """Requests that can be the index: status and intent of `index_request`; with
    covered_only, only those whose code is in the index value set."""
    spec = ctx.table["index_request"]
    out = [e for e in entries if e.rtype == spec["resourceType"]
           and e.resource.get("status") in spec["status"]
           and e.resource.get("intent") in spec["intent"]]
    return [e for e in out if is_index(ctx, e.resource)] if covered_only else out


def _codes(ctx: Context, resource: dict) -> str:
    names = {v: k for k, v in ctx.systems.items()}
    coded = next((resource[k] for k in ("code", "codeCodeableConcept", "medicationCodeableConcept")
                  if isinstance(resource.get(k), dict)), None)
    shown = [f"{names.get(c.get('system'), c.get('system') or 'no system')} {c.get('code')}"
             for c in codings(coded)]
    return " + ".join(shown) or "no code"


class Refs(dict):
    """fullUrl / <Type>/<id> → entry; an absolute reference also resolves by its last
    <Type>/<id> (FHIR R4 §2.36.4.1, resolving references in Bundles)."""

    def get(self, ref, default=None):
        hit = super().get(ref)
        if hit is None and isinstance(ref, str) and "://" in ref:
            parts = ref.rstrip("/").split("/")
            if len(parts) >= 2:
                hit = super().get("/".join(parts[-2:]))
        return default if hit is None else hit


def choose_index(ctx: Context, entries: list[Entry], source: str) -> Entry:
    """The index request: the one draft/active order whose code the index value set covers;
    else, when exactly one draft/active order is sent, that one (a service no loaded policy
    may cover: routing names its code). Otherwise one line naming what was found."""
    spec = ctx.table["index_request"]
    covered = candidate_requests(ctx, entries, covered_only=True)
    if len(covered) > 1:
        raise InputError(f"{len(covered)} index ServiceRequests ({_codes(ctx, covered[0].resource)}"
                         ", draft/active, order); exactly one allowed (input contract, section 1 rule 4)",
                         source=source, place=covered[1].place("ServiceRequest.code"))
    if covered:
        return covered[0]
    others = [e for e in candidate_requests(ctx, entries)
              if not matches(ctx, e.resource.get("code"), [{"valueset": "addon-service"}])]
    if len(others) == 1:
        return others[0]
    found = [e for e in entries if e.rtype == spec["resourceType"]]
    if not found:  # other orders (DeviceRequest, MedicationRequest, ...) are named too
        found = [e for e in entries if e.rtype.endswith("Request") or e.rtype == "NutritionOrder"]
    if others:
        listed = "; ".join(_codes(ctx, e.resource) for e in others)
        raise InputError(f"no policy covers the requested services ({listed}): "
                         f"{len(others)} orders and none in the index value set", source=source,
                         place=others[0].place("ServiceRequest.code"))
    shown = "; ".join(f"{e.rtype} {_codes(ctx, e.resource)} (status {e.resource.get('status')}, "
                      "intent "
                      f"{e.resource.get('intent')})" for e in found[:5])
    raise InputError("no prior-authorization request: no index ServiceRequest (status "
                     f"{' or '.join(spec['status'])}, intent {' or '.join(spec['intent'])}; "
                     "input contract, section 1 rule 4)" + (f"; found {shown}" if found else
                                                 "; the record holds no order"),
                     source=source, place="Bundle.entry")


def check_envelope(flat: Flattened, ctx: Context, source: str) -> tuple[Entry, Entry, dict]:
    """§1: structure (R4B), one Patient, one index request, resolvable references.

    Returns (patient entry, index entry, reference index)."""
    for e in flat.entries:
        problem = fhir_engine.validate_resource(e.resource, entry=e.index, full_url=e.full_url)
        if problem is not None:
            raise InputError(problem.message, source=source, place=e.place(problem.element))
    refs: Refs = Refs()
    for e in flat.entries:
        if e.full_url:
            refs[e.full_url] = e
        rid = e.resource.get("id")
        if rid:
            refs.setdefault(f"{e.rtype}/{rid}", e)
    index = [choose_index(ctx, flat.entries, source)]
    if not is_index(ctx, index[0].resource) and not any(
            ctx.concept(c.get("system"), c.get("code"))
            for c in codings(index[0].resource.get("code"))):
        # Packs cover concepts of the code systems the knowledge graph holds; a service coded
        # only in another system (an X12 service type, a local code) is covered by none.
        raise InputError(f"no policy covers the requested service ({_codes(ctx, index[0].resource)}"
                         "): its code system is not one the loaded policies use", source=source,
                         place=index[0].place("ServiceRequest.code"))
    patients = [e for e in flat.entries if e.rtype == "Patient"]
    if not patients:
        if not is_index(ctx, index[0].resource):
            codes = _codes(ctx, index[0].resource)
            raise InputError(f"no policy covers the requested service ({codes})"
                             " and the record has no Patient", source=source,
                             place=index[0].place("ServiceRequest.code"))
        raise InputError("no Patient entry (input contract, section 1 rule 3)", source=source,
                         place="Bundle.entry")
    if len(patients) > 1:
        raise InputError(f"{len(patients)} Patient entries; exactly one allowed "
                         "(input contract, section 1 rule 3)", source=source, place=patients[1].place("Patient"))
    patient = patients[0]
    for e in flat.entries:
        for ref, where in iter_references(e.resource, e.rtype):
            target = refs.get(ref)
            if target is None:
                if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
                    raise InputError(f"reference {ref} is not the fullUrl of an entry in the "
                                     "Bundle (input contract, section 1 rule 2)", source=source,
                                     place=e.place(where + ".reference"))
                continue  # outside references are ignored (§1 rule 2)
            if where in (f"{e.rtype}.subject", f"{e.rtype}.patient") and target is not patient \
                    and e.rtype not in ctx.table["context_resource_types"]:
                raise InputError(f"{where} points to {target.rtype} {ref}, not to the Patient "
                                 "(input contract, section 1 rule 3)", source=source,
                                 place=e.place(where + ".reference"))
    return patient, index[0], refs

