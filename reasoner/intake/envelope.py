"""Envelopes: recognising what was sent and flattening it to the entries of a collection Bundle."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..engines import fhir as fhir_engine
from ..errors import InputError

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# ---------------------------------------------------------------------------- flattening


@dataclass
class Entry:
    index: int
    full_url: str | None
    resource: dict
    origin: str  # where it stood in the input: "entry[3]", "prefetch.conditions.entry[0]", ...

    @property
    def rtype(self) -> str:
        return str(self.resource.get("resourceType"))

    def place(self, element: str | None = None) -> str:
        url = f" ({self.full_url})" if self.full_url else ""
        where = f"entry {self.index}" if self.origin == f"entry[{self.index}]" else self.origin
        return f"{where}{url}" + (f" {element}" if element else "")


@dataclass
class Flattened:
    entries: list[Entry]
    wrapper: str  # "collection" | "cds-hooks" | "pas"
    bundle_id: str | None


def flatten(data: Any, source: str) -> Flattened:
    """Recognise the wrapper and return the entries of the equivalent collection Bundle."""
    if not isinstance(data, dict):
        raise InputError(f"not a FHIR Bundle: the JSON is a {type(data).__name__}, not an object",
                         source=source)
    if "hook" in data or ("context" in data and "prefetch" in data):
        return _flatten_cds_hooks(data, source)
    rtype = data.get("resourceType")
    if rtype != "Bundle":
        what = f"resourceType is {rtype!r}" if rtype else "no resourceType"
        raise InputError(f"not a FHIR Bundle ({what}); expected a collection Bundle, a CDS Hooks "
                         "request or a PAS request Bundle", source=source, place="resourceType")
    problem = fhir_engine.validate_bundle_shell(data)
    if problem is not None:
        raise InputError(problem.message, source=source, place=problem.place())
    if data.get("type") != "collection":
        raise InputError(f"Bundle.type is {data.get('type')!r}; a request Bundle is a "
                         "'collection' (CONVENTIONS §1 rule 1)", source=source, place="Bundle.type")
    entries = []
    for i, e in enumerate(data.get("entry") or []):
        if not isinstance(e.get("resource"), dict):
            raise InputError("entry has no resource", source=source,
                             place=f"entry {i} ({e.get('fullUrl')}) Bundle.entry[{i}].resource")
        if not e.get("fullUrl"):
            raise InputError("entry has no fullUrl (CONVENTIONS §1 rule 2)", source=source,
                             place=f"entry {i} Bundle.entry[{i}].fullUrl")
        entries.append(Entry(i, e["fullUrl"], e["resource"], f"entry[{i}]"))
    bundle_id = data.get("id") or (data.get("identifier") or {}).get("value")
    claims = [e for e in entries if e.rtype == "Claim"]
    if claims:
        return _flatten_pas(entries, claims, bundle_id, source)
    return Flattened(entries, "collection", bundle_id)


def _flatten_pas(entries: list[Entry], claims: list[Entry], bundle_id, source) -> Flattened:
    by_url = {e.full_url: e for e in entries}
    for claim in claims:
        for i, info in enumerate(claim.resource.get("supportingInfo") or []):
            ref = (info.get("valueReference") or {}).get("reference")
            if ref and ref.startswith("urn:") and ref not in by_url:
                raise InputError(f"reference {ref} is not the fullUrl of an entry", source=source,
                                 place=claim.place(f"Claim.supportingInfo[{i}].valueReference"))
    kept = [e for e in entries if e.rtype not in ("Claim", "ClaimResponse")]
    out = [Entry(i, e.full_url, e.resource, e.origin) for i, e in enumerate(kept)]
    # keep the original position in the message: origin still says entry[<original index>]
    return Flattened(out, "pas", bundle_id)


def _flatten_cds_hooks(data: dict, source: str) -> Flattened:
    context = data.get("context")
    if not isinstance(context, dict):
        raise InputError("CDS Hooks request without a context object", source=source,
                         place="context")
    collected: list[tuple[str | None, dict, str]] = []

    def add_bundle(bundle: Any, where: str):
        if not isinstance(bundle, dict):
            return
        if bundle.get("resourceType") != "Bundle":
            add_resource(bundle, where)
            return
        problem = fhir_engine.validate_bundle_shell(bundle)
        if problem is not None:
            raise InputError(problem.message, source=source, place=f"{where} {problem.element}")
        for i, e in enumerate(bundle.get("entry") or []):
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                collected.append((e.get("fullUrl"), e["resource"], f"{where}.entry[{i}]"))

    def add_resource(resource: Any, where: str):
        if isinstance(resource, dict) and resource.get("resourceType"):
            collected.append((None, resource, where))

    draft = context.get("draftOrders")
    if draft is None:
        raise InputError("CDS Hooks request without context.draftOrders", source=source,
                         place="context.draftOrders")
    add_bundle(draft, "context.draftOrders")
    prefetch = data.get("prefetch") or {}
    if not isinstance(prefetch, dict):
        raise InputError("prefetch is not an object", source=source, place="prefetch")
    for key, value in prefetch.items():
        add_bundle(value, f"prefetch.{key}")
    entries, seen = [], set()
    for full_url, resource, where in collected:
        if not full_url:
            rid = resource.get("id")
            if rid is None:
                raise InputError("resource has neither fullUrl nor id", source=source, place=where)
            full_url = f"urn:uuid:{rid}" if _UUID.match(str(rid)) else f"{resource['resourceType']}/{rid}"
        if full_url in seen:
            continue  # the same resource under several prefetch keys
        seen.add(full_url)
        entries.append(Entry(len(entries), full_url, resource, where))
    return Flattened(entries, "cds-hooks", data.get("hookInstance"))

