"""CDS Hooks 2.0 requests (order-sign, order-select; Da Vinci CRD): flattened to one record.

`context.draftOrders` is a Bundle (CDS Hooks 2.0 order-sign: "a Bundle of the orders"; its
`type` may be absent, CRD examples omit it) or bare resources; `prefetch` values are Bundles
(searchset, any type or none) or bare resources. Without prefetch the request is still read:
the patient is `context.patientId`, no record fact is known, so criteria that need one come
out missing (`Flattened.prefetch_missing`).
"""

from __future__ import annotations

from typing import Any

from ..engines import fhir as fhir_engine
from ..errors import InputError
from .envelope import Entry, Flattened, entry_url

def flatten_cds_hooks(data: dict, source: str) -> Flattened:
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
        if "type" not in bundle:
            bundle = {**bundle, "type": "collection"}  # draftOrders without Bundle.type
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
    missing = not any(isinstance(r, dict) and r.get("resourceType") == "Patient"
                      for _, r, _ in collected)
    if missing and isinstance(context.get("patientId"), str):
        # no prefetch: the patient is known by id only; every record fact is absent
        collected.append((None, {"resourceType": "Patient", "id": context["patientId"]},
                          "context.patientId"))
    entries, seen = [], set()
    for full_url, resource, where in collected:
        full_url = entry_url(resource, full_url)
        if not full_url:
            raise InputError("resource has neither fullUrl nor id", source=source, place=where)
        if full_url in seen:
            continue  # the same resource under several prefetch keys
        seen.add(full_url)
        entries.append(Entry(len(entries), full_url, resource, where))
    return Flattened(entries, "cds-hooks", data.get("hookInstance"), prefetch_missing=missing)

