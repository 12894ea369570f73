"""Envelopes: recognising what was sent and flattening it to the entries of one record.

Accepted (FHIR R4 4.0.1 JSON): a Bundle of type collection, transaction, batch, searchset or
document (Bundle.type, R4 §2.36 "bundle-type"); a Da Vinci PAS request Bundle (`pas.py`); a
CDS Hooks 2.0 request (`cdshooks.py`); a `Parameters` resource carrying one such Bundle (the
$submit operation's input). Named and refused in one line: PAS inquiries and responses, STU3
and DSTU2 content, Bundles of other types, input over the limits below.

Limits (named in every message that enforces them): `MAX_BYTES` file size, `MAX_DEPTH` JSON
nesting, `MAX_ENTRIES` resources and `MAX_FACTS` facts in one record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..engines import fhir as fhir_engine
from ..errors import InputError
from . import versions

MAX_BYTES = 30_000_000  # file size limit, bytes
MAX_DEPTH = 100  # JSON nesting limit (FHIR R4 resources nest far less)
MAX_FACTS = 1_000  # facts (counted, recognised resources) in one record
MAX_ENTRIES = 5_000  # resources in one record (decided within seconds; a larger record: refused)
RECORD_BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset", "document")

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
    wrapper: str  # "collection" | "cds-hooks" | "pas" | the Bundle.type of a record
    bundle_id: str | None
    prefetch_missing: bool = False  # a CDS Hooks request sent without the patient's record


def json_depth_problem(data: Any) -> str | None:
    """None, or the message when the JSON nests deeper than MAX_DEPTH (checked iteratively)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"JSON nested more than {MAX_DEPTH} levels deep (nesting limit {MAX_DEPTH})"
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return None


def entry_url(resource: dict, full_url: Any) -> str | None:
    """The entry's fullUrl, else one made from its id (urn:uuid:<id> or <Type>/<id>)."""
    if isinstance(full_url, str) and full_url:
        return full_url
    rid = resource.get("id")
    if rid is None:
        return None
    return f"urn:uuid:{rid}" if _UUID.match(str(rid)) else f"{resource.get('resourceType')}/{rid}"


def flatten(data: Any, source: str, ctx: Any = None) -> Flattened:
    """Recognise the wrapper and return the entries of the equivalent record."""
    if not isinstance(data, dict):
        raise InputError(f"not a FHIR Bundle: the JSON is a {type(data).__name__}, not an object",
                         source=source)
    problem = json_depth_problem(data)
    if problem:
        raise InputError(problem, source=source)
    if "hook" in data or ("context" in data and "prefetch" in data):
        from .cdshooks import flatten_cds_hooks

        return flatten_cds_hooks(data, source)
    rtype = data.get("resourceType")
    if rtype == "Parameters":
        data = _from_parameters(data, source)
        rtype = data.get("resourceType")
    from . import pas

    pas.refuse_non_requests(data, source)
    if rtype != "Bundle" and isinstance(rtype, str) and not versions.detect(data) \
            and fhir_engine.is_resource_type(rtype):
        # one resource (a US Core example, a ServiceRequest sent alone): a record of one
        url = entry_url(data, None) or f"urn:resource:{rtype}"
        data = {"resourceType": "Bundle", "type": "collection",
                "entry": [{"fullUrl": url, "resource": data}]}
        rtype = "Bundle"
    if rtype != "Bundle":
        version = versions.detect(data)
        if version:
            raise InputError(f"this is FHIR {version} content ({version} {rtype}); send FHIR R4 "
                             "(4.0.1) JSON", source=source, place="resourceType")
        what = f"resourceType is {rtype!r}" if rtype else "no resourceType"
        raise InputError(f"not a FHIR Bundle ({what}); expected a collection Bundle, a CDS Hooks "
                         "request or a PAS request Bundle", source=source, place="resourceType")
    raw = data.get("entry") or []
    if isinstance(raw, list) and len(raw) > MAX_ENTRIES:
        raise InputError(f"{len(raw)} entries; over the limit of {MAX_ENTRIES} entries per "
                         "record", source=source, place="Bundle.entry")
    version = versions.detect(data)
    if version:
        raise InputError(f"this is a FHIR {version} Bundle ({versions.why(data)}); send FHIR R4 "
                         "(4.0.1) JSON", source=source, place="Bundle.entry")
    problem = fhir_engine.validate_bundle_shell(data)
    if problem is not None:
        raise InputError(problem.message, source=source, place=problem.place())
    if data.get("type") not in RECORD_BUNDLE_TYPES:
        raise InputError(f"Bundle.type is {data.get('type')!r}; a request or record Bundle is one "
                         f"of {', '.join(RECORD_BUNDLE_TYPES)}", source=source, place="Bundle.type")
    entries = []
    for i, e in enumerate(raw):
        if not isinstance(e.get("resource"), dict):
            if data.get("type") in ("searchset", "batch", "transaction"):
                continue  # a search or transaction entry may carry only request/response
            raise InputError("entry has no resource", source=source,
                             place=f"entry {i} ({e.get('fullUrl')}) Bundle.entry[{i}].resource")
        url = entry_url(e["resource"], e.get("fullUrl"))
        if not url:
            raise InputError("entry has neither fullUrl nor resource id (input contract, section 1 rule 2)",
                             source=source, place=f"entry {i} Bundle.entry[{i}].fullUrl")
        entries.append(Entry(i, url, e["resource"], f"entry[{i}]"))
    bundle_id = data.get("id") or (data.get("identifier") or {}).get("value")
    claim = pas.request_claim(entries)
    if claim is not None:
        return pas.flatten_pas(entries, claim, bundle_id, source, ctx)
    wrapper = "collection" if data.get("type") == "collection" else data["type"]
    return Flattened(entries, wrapper, bundle_id)


def _from_parameters(data: dict, source: str) -> dict:
    """The Bundle an operation's Parameters carries (e.g. Claim/$submit `resource`)."""
    bundles = [p.get("resource") for p in data.get("parameter") or []
               if isinstance(p, dict) and isinstance(p.get("resource"), dict)]
    if len(bundles) != 1:
        raise InputError(f"Parameters with {len(bundles)} resources; expected one request Bundle",
                         source=source, place="Parameters.parameter")
    return bundles[0]
