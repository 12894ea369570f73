"""Da Vinci PAS (Prior Authorization Support, STU2) request Bundles, read as one record.

A PAS request is a Bundle whose Claim has `use` = preauthorization (PAS "PAS Request Bundle":
the Claim is the first entry; inside a collection or transaction it is the one such Claim).
Any other Claim (`use` claim, a Synthea billing Claim) and ExplanationOfBenefit are record
content like any other entry. The request Claim gives the requested service:

| fact | element |
|---|---|
| service | `Claim.item[].productOrService` (the item the index value set covers, else the first) |
| ServiceRequest | `Claim.item[].extension[requestedService].valueReference` (PAS extension) |
| date | `item.servicedDate`, `item.servicedPeriod.start`, else `Claim.created` (as authoredOn) |
| reasons | `Claim.diagnosis[]` by `sequence`: `diagnosisReference`, or a Condition made |
|   | from `diagnosisCodeableConcept` |
| levels | `item.quantity` (counted only with a level unit, `mapper`) |
| roots, side | `item.bodySite`, `item.subSite` |

What the referenced ServiceRequest states wins; the item fills what it lacks. An inquiry
($inquire: a Claim or Bundle with an inquiry profile) and a ClaimResponse are refused for what
they are.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InputError
from .elements import codings
from .envelope import Entry, Flattened

REQUESTED_SERVICE = ("http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                     "extension-requestedService")
INQUIRY_MARK = "inquiry"  # PAS profiles profile-pas-inquiry-request-bundle, profile-claim-inquiry
RESPONSE_MARK = "response-bundle"  # profile-pas-response-bundle, ...-inquiry-response-bundle


def _profiles(resource: Any) -> list[str]:
    if not isinstance(resource, dict):
        return []
    return [p for p in (resource.get("meta") or {}).get("profile") or [] if isinstance(p, str)]


def refuse_non_requests(data: dict, source: str) -> None:
    """A PAS inquiry or a ClaimResponse (bare or first in a Bundle) is not a request."""
    resources = [data]
    if data.get("resourceType") == "Bundle":
        resources += [e.get("resource") for e in data.get("entry") or []
                      if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    first = resources[1] if len(resources) > 1 else data
    preauth = any(r.get("resourceType") == "Claim" and r.get("use") == "preauthorization"
                  for r in resources)
    bundle_says_response = any(RESPONSE_MARK in p.lower() for p in _profiles(data))
    if first.get("resourceType") == "ClaimResponse" or bundle_says_response or (
            not preauth and any(r.get("resourceType") == "ClaimResponse" for r in resources)):
        raise InputError("this is a ClaimResponse: a response, not a request", source=source,
                         place="ClaimResponse")
    for r in resources:
        if any(INQUIRY_MARK in p.lower() for p in _profiles(r)):
            raise InputError("this is a PAS inquiry (a status query on an earlier request), "
                             "not a prior-authorization request", source=source,
                             place=f"{r.get('resourceType')}.meta.profile")


def request_claim(entries: list[Entry]) -> Entry | None:
    """The PAS request Claim: the Claim with use preauthorization (first of them)."""
    claims = [e for e in entries
              if e.rtype == "Claim" and e.resource.get("use") == "preauthorization"]
    return claims[0] if claims else None


def _resolve(entries: list[Entry], ref: Any) -> Entry | None:
    if not isinstance(ref, str):
        return None
    for e in entries:
        rid = e.resource.get("id")
        named = rid and (ref == f"{e.rtype}/{rid}" or ref.endswith(f"/{e.rtype}/{rid}"))
        if e.full_url == ref or named:
            return e
    return None


def flatten_pas(entries: list[Entry], claim: Entry, bundle_id, source: str, ctx) -> Flattened:
    from .checks import candidate_requests

    c = claim.resource
    for i, info in enumerate(c.get("supportingInfo") or []):
        ref = (info.get("valueReference") or {}).get("reference")
        if ref and ref.startswith("urn:") and _resolve(entries, ref) is None:
            raise InputError(f"reference {ref} is not the fullUrl of an entry", source=source,
                             place=claim.place(f"Claim.supportingInfo[{i}].valueReference"))
    kept = [e for e in entries if e is not claim and e.rtype != "ClaimResponse"]
    extra: list[Entry] = []
    if ctx is not None:
        kept, extra = _request_from_items(kept, claim, ctx, candidate_requests(ctx, kept, True))
    out = [Entry(i, e.full_url, e.resource, e.origin) for i, e in enumerate(kept + extra)]
    return Flattened(out, "pas", bundle_id)


def _pick_item(items: list, ctx) -> tuple[int, dict] | None:
    from .tables import matches

    spec = ctx.table["index_request"]
    listed = [(i, it) for i, it in enumerate(items) if isinstance(it, dict)]
    for i, it in listed:
        if matches(ctx, it.get("productOrService"), [spec["code"]]):
            return i, it
    return listed[0] if listed else None


def _request_from_items(kept: list[Entry], claim: Entry, ctx, covered: list[Entry]):
    """The index ServiceRequest completed from the Claim: the item's ServiceRequest (or the
    one covered request sent) keeps what it states; the item and the Claim fill the rest."""
    c = claim.resource
    picked = _pick_item(c.get("item") or [], ctx)
    i, item = picked if picked is not None else (0, {})
    ref = next((x.get("valueReference", {}).get("reference") for x in item.get("extension") or []
                if isinstance(x, dict) and x.get("url") == REQUESTED_SERVICE), None)
    base_entry = _resolve(kept, ref)
    if base_entry is None and len(covered) == 1:
        base_entry = covered[0]
    if base_entry is None and picked is None:
        return kept, []
    if base_entry is not None and base_entry.rtype == "ServiceRequest":
        sr = copy.deepcopy(base_entry.resource)
        url, origin = base_entry.full_url, base_entry.origin
        position = kept.index(base_entry)
    else:
        sr = {"resourceType": "ServiceRequest", "status": "active", "intent": "order"}
        url = f"{claim.full_url}/item/{item.get('sequence', i + 1)}"
        origin = f"{claim.origin}.item[{i}]"
        position = None
    spec = ctx.table["index_request"]
    if item and not codings(sr.get("code")) or (_covered(ctx, item.get("productOrService"), spec)
                                       and not _covered(ctx, sr.get("code"), spec)):
        sr["code"] = item.get("productOrService")
    sr.setdefault("subject", c.get("patient"))
    if sr.get("status") not in spec["status"]:
        sr["status"] = "active"  # the Claim (status active) is the request
    if sr.get("intent") not in spec["intent"]:
        sr["intent"] = "order"
    if not any(k.startswith("occurrence") for k in sr):
        if item.get("servicedDate"):
            sr["occurrenceDateTime"] = item["servicedDate"]
        elif (item.get("servicedPeriod") or {}).get("start"):
            sr["occurrencePeriod"] = item["servicedPeriod"]
    if c.get("created") and "authoredOn" not in sr:
        sr["authoredOn"] = c["created"]
    if "quantityQuantity" not in sr and isinstance(item.get("quantity"), dict):
        sr["quantityQuantity"] = item["quantity"]
    sites = [s for s in [item.get("bodySite"), *(item.get("subSite") or [])] if isinstance(s, dict)]
    if sites:
        sr["bodySite"] = list(sr.get("bodySite") or []) + sites
    extra: list[Entry] = []
    if not sr.get("reasonReference"):
        refs = []
        diagnoses = sorted((d for d in c.get("diagnosis") or [] if isinstance(d, dict)),
                           key=lambda d: d.get("sequence") or 0)
        for d in diagnoses:
            if isinstance(d.get("diagnosisReference"), dict):
                refs.append(d["diagnosisReference"])
            elif isinstance(d.get("diagnosisCodeableConcept"), dict):
                seq = d.get("sequence") or len(refs) + 1
                durl = f"{claim.full_url}/diagnosis/{seq}"
                condition = {"resourceType": "Condition", "code": d["diagnosisCodeableConcept"],
                             "subject": c.get("patient")}
                extra.append(Entry(0, durl, condition, f"{claim.origin}.diagnosis[{seq}]"))
                refs.append({"reference": durl})
        if refs:
            sr["reasonReference"] = refs
    sr = {k: v for k, v in sr.items() if v is not None}
    if position is not None:  # the ServiceRequest keeps its place in the Bundle
        kept = kept[:position] + [Entry(0, url, sr, origin)] + kept[position + 1:]
        return kept, extra
    return kept, [Entry(0, url, sr, origin)] + extra


def _covered(ctx, value: Any, spec: dict) -> bool:
    from .tables import matches

    return matches(ctx, value, [spec["code"]])
