"""Request normalisation before the envelope checks, for shapes real senders use.

- Da Vinci CRD `ext-billing-options` on a request's `code` (table `code_extensions`): its
  codings are read as codings of the code, so a SNOMED CT order with a CPT billing option is
  a CPT request.
- A MedicationRequest/MedicationStatement with `medicationReference` to a Medication entry
  (US Core allows either form): the Medication's `code` is read as `medicationCodeableConcept`.
- A request with `reasonCode` but no `reasonReference` (FHIR R4 ServiceRequest.reasonCode:
  "coded reason"): each CodeableConcept becomes a Condition entry the request references, so
  the reason diagnosis is one fact whichever element carried it.
"""

from __future__ import annotations

import copy

from .elements import codings
from .envelope import Entry, Flattened

REQUEST_TYPES = ("ServiceRequest",)
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")


def normalize(flat: Flattened, ctx) -> Flattened:
    urls = set(ctx.table.get("code_extensions", []))
    spec = ctx.table["index_request"]
    out: list[Entry] = []
    extra: list[Entry] = []
    medications = {k: e.resource for e in flat.entries if e.rtype == "Medication"
                   for k in (e.full_url, f"Medication/{e.resource.get('id')}")}
    for e in flat.entries:
        r = e.resource
        if e.rtype in MEDICATION_TYPES:
            r = _with_medication_code(r, medications)
        if e.rtype in REQUEST_TYPES:
            r = _with_billing_codes(r, urls)
            if r.get("reasonCode") and not r.get("reasonReference") \
                    and r.get("status") in spec["status"] and r.get("intent") in spec["intent"]:
                r = copy.deepcopy(r)
                refs = []
                for i, cc in enumerate(r["reasonCode"]):
                    if not codings(cc):
                        continue
                    url = f"{e.full_url}/reasonCode/{i}"
                    condition = {"resourceType": "Condition", "code": cc}
                    if isinstance(r.get("subject"), dict):
                        condition["subject"] = r["subject"]
                    extra.append(Entry(0, url, condition, f"{e.origin}.reasonCode[{i}]"))
                    refs.append({"reference": url})
                if refs:
                    r["reasonReference"] = refs
        out.append(Entry(e.index, e.full_url, r, e.origin) if r is not e.resource else e)
    if not extra:
        return Flattened(out, flat.wrapper, flat.bundle_id, flat.prefetch_missing)
    start = len(out)
    extra = [Entry(start + i, x.full_url, x.resource, x.origin) for i, x in enumerate(extra)]
    return Flattened(out + extra, flat.wrapper, flat.bundle_id, flat.prefetch_missing)


def _with_billing_codes(r: dict, urls: set[str]) -> dict:
    code = r.get("code")
    if not isinstance(code, dict):
        return r
    added = []
    for x in code.get("extension") or []:
        if isinstance(x, dict) and x.get("url") in urls:
            added += codings(x.get("valueCodeableConcept")) + codings(x.get("valueCoding"))
    if not added:
        return r
    r = copy.deepcopy(r)
    r["code"]["coding"] = list(r["code"].get("coding") or []) + [dict(c) for c in added]
    return r


def _with_medication_code(r: dict, medications: dict) -> dict:
    ref = (r.get("medicationReference") or {}).get("reference")
    med = medications.get(ref) if isinstance(ref, str) else None
    if med is None or "medicationCodeableConcept" in r or not isinstance(med.get("code"), dict):
        return r
    r = {k: v for k, v in r.items() if k != "medicationReference"}
    r["medicationCodeableConcept"] = med["code"]
    return r
