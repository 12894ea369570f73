"""FHIR R4 intake: a request Bundle → the case model (CONVENTIONS.md v1, sections 1-4).

    map_bundle(data, source, kb=None) -> rdflib.Graph

1. **Wrappers** are flattened to the collection form (§1 rule 1): a plain `collection` Bundle;
   a CDS Hooks request (`context.draftOrders` + `prefetch`); a Da Vinci PAS request Bundle
   (a `Claim` whose `supportingInfo` reference the resources; the Claim is dropped).
2. **Structure** is checked by `reasoner.engines.fhir` (fhir.resources R4B models).
3. **Envelope** (§1): one Patient, exactly one index ServiceRequest, references resolve,
   dates are calendar dates. Any failure raises `InputError` with one line naming the file,
   the entry (index and fullUrl) and the element.
4. **Mapping**: the declarative table `fhir-mapping.json` (format: `README.md` beside this
   file) says which resource type / category / code list gives which class and which element
   gives which property. Code lists come from the knowledge graph's value sets
   (`vs:<name>`), falling back to the table's copies only when the graph lacks them.
   Resources outside the "counts when" states of §1 rule 6 become `nr:NotCountedItem`s with
   the reason; well-formed resources with codes the conventions do not know become
   `nr:UnrecognisedItem`s. Every node carries `prov:wasDerivedFrom` the entry (an
   `nr:FhirResource` named by its fullUrl) and `nr:sourceElement`.

The mapper decides nothing about criteria: dates after D, windows and concordance are the
shapes' business (§5), so Turtle and FHIR cases meet the same rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote, unquote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SKOS, XSD

from ..engines import fhir as fhir_engine
from ..errors import InputError
from ..vocab import CASE_BASE, NR, VS, bind_prefixes

MAPPING_FILE = Path(__file__).with_name("fhir-mapping.json")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(T.*)?$")
_IRI_SAFE = "-._~!$&'()*+,;=:@"
_SEGMENT = re.compile(r"^([A-Za-z0-9_*]+)(?:\[([^\]]+)\])?$")


# ---------------------------------------------------------------------------- the table


@lru_cache(maxsize=1)
def load_table(path: str | None = None) -> dict:
    """The mapping table (JSON), parsed once."""
    return json.loads(Path(path or MAPPING_FILE).read_text(encoding="utf-8"))


@dataclass
class ValueSet:
    codes: frozenset[str]  # concept IRIs
    prefixes: tuple[tuple[str, str], ...]  # (namespace, code prefix)

    def __contains__(self, iri: str) -> bool:
        if iri in self.codes:
            return True
        for ns, prefix in self.prefixes:
            if iri.startswith(ns) and unquote(iri[len(ns):]).startswith(prefix):
                return True
        return False


@dataclass
class Context:
    """Everything the mapper needs from the table and the knowledge graph, built once per KB."""

    table: dict
    systems: dict[str, str]  # alias → FHIR system URI
    namespaces: dict[str, str]  # FHIR system URI → concept namespace
    project_base: str | None
    project_ns: str | None
    valuesets: dict[str, ValueSet]
    days: dict[str, Decimal]
    rules: dict[str, dict]
    rules_by_type: dict[str, list[dict]]
    valueset_source: dict[str, str] = field(default_factory=dict)  # name → "kb" | "table"
    known: dict[str, frozenset[str]] = field(default_factory=dict)  # namespace → concept IRIs

    def is_known(self, system: str, code: Any) -> bool:
        """Does the knowledge graph define this code? (True when it knows no code of the system.)"""
        ns = self.namespace(system)
        concepts = self.known.get(ns or "")
        if not concepts:
            return True
        iri = self.concept(system, code)
        return iri is not None and str(iri) in concepts

    def namespace(self, system: str | None) -> str | None:
        if not system:
            return None
        ns = self.namespaces.get(system)
        if ns is None and self.project_base and system.startswith(self.project_base):
            name = system[len(self.project_base):]
            if name and "/" not in name:
                ns = self.project_ns.replace("*", name)
        return ns

    def concept(self, system: str | None, code: Any) -> URIRef | None:
        ns = self.namespace(system)
        if ns is None or code is None or str(code) == "":
            return None
        return URIRef(ns + quote(str(code), safe=_IRI_SAFE))

    def system_uri(self, alias: str) -> str:
        return self.systems.get(alias, alias)


def _default_kb() -> Graph | None:
    from ..kb import project_root

    root = project_root() / "knowledge"
    if not root.exists():
        return None
    graph = Graph()
    for path in sorted(root.rglob("*.ttl")):
        try:
            graph.parse(path, format="turtle")
        except Exception:  # a broken knowledge file is the KB loader's error to report
            continue
    return graph


_CONTEXTS: dict[int, tuple[Graph | None, Context]] = {}


def context_for(kb: Graph | None) -> Context:
    """The mapping context for a knowledge graph (None: the project's knowledge/ folder)."""
    key = id(kb)
    hit = _CONTEXTS.get(key)
    if hit is not None and hit[0] is kb:
        return hit[1]
    graph = kb if kb is not None else _default_kb()
    ctx = _build_context(graph)
    _CONTEXTS[key] = (kb, ctx)
    return ctx


def _build_context(kb: Graph | None) -> Context:
    table = load_table()
    systems = dict(table["systems"])
    namespaces: dict[str, str] = {}
    project_base = project_ns = None
    for system, ns in table["namespaces"].items():
        if system.endswith("*"):
            project_base, project_ns = system[:-1], ns
        else:
            namespaces[system] = ns
    days = {k: Decimal(str(v)) for k, v in table["ucum_days"].items()}
    kb_valuesets: dict[str, ValueSet] = {}
    if kb is not None:
        # system URI → namespace from the concept schemes (dcterms:identifier)
        for scheme in kb.subjects(RDF.type, SKOS.ConceptScheme):
            for ident in kb.objects(scheme, DCTERMS.identifier):
                namespaces[str(ident)] = str(scheme).rstrip("/") + "/"
        ucum_ns = namespaces.get(systems["UCUM"])
        for unit, value in kb.subject_objects(NR.daysPerUnit):
            if ucum_ns and str(unit).startswith(ucum_ns):
                try:
                    days[unquote(str(unit)[len(ucum_ns):])] = Decimal(str(value))
                except InvalidOperation:
                    pass
        for vs in set(kb.subjects(RDF.type, NR.ValueSet)):
            name = str(vs)[len(str(VS)):] if str(vs).startswith(str(VS)) else None
            if not name:
                continue
            codes = frozenset(str(c) for c in kb.objects(vs, NR.includesCode))
            schemes = [str(s).rstrip("/") + "/" for s in kb.objects(vs, NR.prefixScheme)]
            prefixes = tuple((ns, str(p)) for p in kb.objects(vs, NR.includesCodePrefix)
                             for ns in schemes)
            kb_valuesets[name] = ValueSet(codes, prefixes)
    ctx = Context(table, systems, namespaces, project_base, project_ns, {}, days, {}, {})
    if kb is not None:
        by_ns: dict[str, set[str]] = {}
        for concept, scheme in kb.subject_objects(SKOS.inScheme):
            by_ns.setdefault(str(scheme).rstrip("/") + "/", set()).add(str(concept))
        ctx.known = {ns: frozenset(v) for ns, v in by_ns.items()}
    for name, parts in table["valuesets"].items():
        if name in kb_valuesets:
            ctx.valuesets[name] = kb_valuesets[name]
            ctx.valueset_source[name] = "kb"
        else:
            ctx.valuesets[name] = _inline_valueset(ctx, parts)
            ctx.valueset_source[name] = "table"
    for name, vs in kb_valuesets.items():
        ctx.valuesets.setdefault(name, vs)
        ctx.valueset_source.setdefault(name, "kb")
    for rule in table["rules"]:
        ctx.rules[rule["id"]] = rule
        ctx.rules_by_type.setdefault(rule["resourceType"], []).append(rule)
    return ctx


def _inline_valueset(ctx: Context, parts: list[dict]) -> ValueSet:
    codes = set()
    for part in parts:
        system = ctx.system_uri(part["system"])
        for code in part["codes"]:
            iri = ctx.concept(system, code)
            if iri is not None:
                codes.add(str(iri))
    return ValueSet(frozenset(codes), ())


# ---------------------------------------------------------------------------- JSON helpers


def _codings(value: Any) -> list[dict]:
    """The codings of a CodeableConcept, a Coding, or a list of either."""
    if isinstance(value, list):
        return [c for v in value for c in _codings(v)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("coding"), list):
        return [c for c in value["coding"] if isinstance(c, dict)]
    if "code" in value and ("system" in value or not isinstance(value.get("code"), dict)):
        return [value]
    return []


def _code_of(value: Any) -> list[str]:
    """Plain code strings of an element: a code, a CodeableConcept or a Coding."""
    if isinstance(value, str):
        return [value]
    return [str(c.get("code")) for c in _codings(value) if c.get("code") is not None]


def _text_of(value: Any) -> str | None:
    if isinstance(value, dict):
        if value.get("text"):
            return str(value["text"])
        for c in _codings(value):
            if c.get("display"):
                return str(c["display"])
        for c in _codings(value):
            if c.get("code"):
                return str(c["code"])
    return None


def select(node: Any, path: str, base: str) -> list[tuple[Any, str]]:
    """Values at a dotted element path, with their FHIR paths (lists are walked; a segment
    `name[code]` keeps the list items whose `code` has that code, e.g. component[zone])."""
    current = [(node, base)]
    if not path:
        return current
    for segment in path.split("."):
        m = _SEGMENT.match(segment)
        if not m:
            return []
        name, selector = m.group(1), m.group(2)
        nxt = []
        for value, where in current:
            if not isinstance(value, dict) or name not in value:
                continue
            child = value[name]
            if isinstance(child, list):
                for i, item in enumerate(child):
                    if selector is not None:
                        if not isinstance(item, dict) or selector not in _code_of(item.get("code")):
                            continue
                    nxt.append((item, f"{where}.{name}[{i}]"))
            elif selector is None:
                nxt.append((child, f"{where}.{name}"))
        current = nxt
    return current


def _iter_references(node: Any, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref, where
        for key, value in node.items():
            if key == "contained":
                continue
            if isinstance(value, (dict, list)):
                yield from _iter_references(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _iter_references(item, f"{where}[{i}]")


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


# ---------------------------------------------------------------------------- envelope


def _parse_date(value: Any, source: str, entry: Entry, element: str) -> date:
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


def _has_code(ctx: Context, value: Any, system_alias: str, codes: Iterable[str]) -> bool:
    system = ctx.system_uri(system_alias)
    wanted = set(codes)
    return any(c.get("system") == system and str(c.get("code")) in wanted for c in _codings(value))


def _matches(ctx: Context, value: Any, matchers: list[dict]) -> bool:
    """Does any coding of the element fall in one of the value sets / code sets?"""
    for coding in _codings(value):
        system, code = coding.get("system"), coding.get("code")
        if system is None or code is None:
            continue
        iri = ctx.concept(system, code)
        for m in matchers:
            if "valueset" in m:
                vs = ctx.valuesets.get(m["valueset"])
                if vs is not None and iri is not None and str(iri) in vs:
                    return True
            elif "codeset" in m:
                for part in ctx.table["codesets"][m["codeset"]]:
                    if system != ctx.system_uri(part["system"]):
                        continue
                    if part["codes"] == "*" or str(code) in part["codes"]:
                        return True
                    if part["codes"] == "known" and ctx.is_known(system, code):
                        return True
    return False


def _is_index(ctx: Context, resource: dict) -> bool:
    spec = ctx.table["index_request"]
    return (resource.get("resourceType") == spec["resourceType"]
            and _matches(ctx, resource.get("code"), [spec["code"]])
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
    index = [e for e in flat.entries if _is_index(ctx, e.resource)]
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
        for ref, where in _iter_references(e.resource, e.rtype):
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


# ---------------------------------------------------------------------------- mapping


@dataclass
class Plan:
    """What one entry becomes."""

    entry: Entry
    rule: dict | None
    kind: str  # "fact" | "context" | "not-counted" | "unrecognised"
    iri: URIRef | None = None
    reason: str | None = None


def _case_id(source: str, flat: Flattened) -> str:
    path = Path(source)
    if path.suffix.lower() == ".json" and path.name:
        stem = path.parent.name if path.stem in ("case", "bundle") else path.stem
        if stem:
            return quote(stem, safe="-._~")
    return quote(str(flat.bundle_id or "fhir-case"), safe="-._~")


def _local_id(entry: Entry) -> str:
    url = entry.full_url or ""
    if url.startswith("urn:uuid:"):
        return url[len("urn:uuid:"):]
    rid = entry.resource.get("id")
    if rid and re.match(r"^[A-Za-z0-9\-.]{1,64}$", str(rid)):
        return str(rid)
    return str(entry.index)


def _count_problem(rule: dict, resource: dict) -> str | None:
    """None if the resource counts (§1 rule 6), else the reason it does not."""
    for cond in rule.get("counts", []):
        values = [v for node, _ in select(resource, cond["element"], "") for v in _code_of(node)]
        shown = ", ".join(values) if values else "absent"
        if "in" in cond and not any(v in cond["in"] for v in values):
            return (f"{resource['resourceType']}.{cond['element']} is {shown}; counts only when "
                    f"{' or '.join(cond['in'])} (CONVENTIONS §1 rule 6)")
        if "not_in" in cond and any(v in cond["not_in"] for v in values):
            return (f"{resource['resourceType']}.{cond['element']} is {shown}; does not count "
                    f"when {' or '.join(cond['not_in'])} (CONVENTIONS §1 rule 6)")
    return None


def _rule_matches(ctx: Context, rule: dict, resource: dict) -> bool:
    match = rule.get("match")
    if not match:
        return True
    cat = match.get("category")
    if cat and not _has_code(ctx, resource.get("category"), cat["system"], [cat["code"]]):
        return False
    if "code" in match:
        element = match.get("element", "code")
        values = [v for v, _ in select(resource, element, "")]
        if not _matches(ctx, values, match["code"]):
            return False
    return True


def _describe(ctx: Context, resource: dict, element: str = "code") -> str:
    if element == "code" and "code" not in resource:
        element = next((k for k, v in resource.items() if k.lower().endswith("code")
                        and isinstance(v, dict)), element)
    parts = []
    for value, _ in select(resource, element, ""):
        for c in _codings(value):
            text = f"{c.get('system', '?')}|{c.get('code', '?')}"
            if c.get("display"):
                text += f" ({c['display']})"
            parts.append(text)
        if isinstance(value, dict) and value.get("text") and not parts:
            parts.append(repr(value["text"]))
    return ", ".join(parts) or "no code"


class _Mapper:
    def __init__(self, flat: Flattened, ctx: Context, source: str, patient: Entry, index: Entry,
                 refs: dict[str, Entry]):
        self.flat, self.ctx, self.source = flat, ctx, source
        self.patient, self.index, self.refs = patient, index, refs
        self.case_id = _case_id(source, flat)
        self.base = f"{CASE_BASE}{self.case_id}/"
        self.g = Graph()
        bind_prefixes(self.g)
        self.case = URIRef(self.base + "case")
        self.plans: dict[str, Plan] = {}

    # -- planning

    def plan(self) -> None:
        context_types = set(self.ctx.table["context_resource_types"])
        for e in self.flat.entries:
            iri = URIRef(f"{self.base}{e.rtype}-{_local_id(e)}")
            if e is self.patient:
                p = Plan(e, self.ctx.rules[self.ctx.table["patient"]["rule"]], "fact", iri)
            elif e is self.index:
                p = Plan(e, self.ctx.rules[self.ctx.table["index_request"]["rule"]], "fact", iri)
            elif e.rtype in context_types:
                p = Plan(e, None, "context")
            else:
                candidates = [r for r in self.ctx.rules_by_type.get(e.rtype, [])
                              if r["id"] not in (self.ctx.table["index_request"]["rule"],
                                                 self.ctx.table["patient"]["rule"])]
                rule = next((r for r in candidates if _rule_matches(self.ctx, r, e.resource)), None)
                if rule is None:
                    if candidates:
                        reason = (f"{e.rtype} with {_describe(self.ctx, e.resource, _code_element(candidates))}"
                                  ": code not in the conventions (CONVENTIONS §4)")
                    else:
                        reason = f"resource type {e.rtype} is not used by the conventions"
                    p = Plan(e, None, "unrecognised", iri, reason)
                else:
                    problem = _count_problem(rule, e.resource)
                    if problem:
                        p = Plan(e, rule, "not-counted", iri, problem)
                    else:
                        p = Plan(e, rule, "fact", iri)
            self.plans[e.full_url] = p

    def fact_of(self, ref: str) -> URIRef | None:
        target = self.refs.get(ref)
        if target is None:
            return None
        p = self.plans.get(target.full_url)
        return p.iri if p is not None and p.kind == "fact" else None

    # -- emitting

    def provenance(self, node: URIRef, e: Entry, element: str) -> None:
        doc = URIRef(e.full_url) if e.full_url and ":" in e.full_url else URIRef(f"{self.base}entry-{e.index}")
        self.g.add((node, PROV.wasDerivedFrom, doc))
        self.g.add((node, NR.sourceElement, Literal(element)))
        if (doc, RDF.type, NR.FhirResource) not in self.g:
            self.g.add((doc, RDF.type, NR.FhirResource))
            self.g.add((doc, NR.resourceType, Literal(e.rtype)))
            self.g.add((doc, NR.entryIndex, Literal(e.index)))
            self.g.add((doc, RDFS.label, Literal(f"{e.rtype}, Bundle {e.place()}")))
            self.g.add((doc, NR.section, Literal(e.origin)))

    def run(self) -> Graph:
        g = self.g
        g.add((self.case, RDF.type, NR.PriorAuthorizationCase))
        g.add((self.case, RDFS.label, Literal(f"FHIR case {unquote(self.case_id)}")))
        g.add((self.case, DCTERMS.source, Literal(self.source)))
        g.add((self.case, NR.intakeWrapper, Literal(self.flat.wrapper)))
        patient_iri = self.plans[self.patient.full_url].iri
        g.add((self.case, NR.patient, patient_iri))
        g.add((self.case, NR.indexRequest, self.plans[self.index.full_url].iri))
        for e in self.flat.entries:
            p = self.plans[e.full_url]
            if p.kind == "context":
                continue
            if p.kind == "unrecognised":
                self.unrecognised(p.iri, e, e.rtype, _describe(self.ctx, e.resource), p.reason)
                continue
            if p.kind == "not-counted":
                node = URIRef(f"{p.iri}-not-counted")
                g.add((node, RDF.type, NR.NotCountedItem))
                g.add((self.case, NR.hasNotCountedItem, node))
                g.add((node, NR.text, Literal(f"{p.rule['label']}: {_text(e.resource, p.rule)}")))
                g.add((node, RDFS.label, Literal(f"{p.rule['label']} (not counted)")))
                g.add((node, NR.reason, Literal(p.reason)))
                for status, _ in select(e.resource, "status", ""):
                    g.add((node, NR.status, Literal(str(status))))
                self.provenance(node, e, e.rtype)
                continue
            self.fact(p, patient_iri)
        return g

    def unrecognised(self, iri: URIRef, e: Entry, element: str, what: str, reason: str) -> None:
        node = URIRef(f"{iri}-unrecognised")
        self.g.add((node, RDF.type, NR.UnrecognisedItem))
        self.g.add((self.case, NR.hasUnrecognisedItem, node))
        self.g.add((node, NR.text, Literal(f"{element}: {what}")))
        self.g.add((node, RDFS.label, Literal(f"not recognised: {element} {what}")))
        self.g.add((node, NR.reason, Literal(reason)))
        self.provenance(node, e, element)

    def fact(self, p: Plan, patient_iri: URIRef) -> None:
        e, rule, node = p.entry, p.rule, p.iri
        g = self.g
        g.add((node, RDF.type, URIRef(_expand(rule["class"]))))
        if rule["primary"] == e.rtype:
            label = e.resource.get("title") or e.resource.get("description") or None
        else:
            label = _text(e.resource, rule)
        g.add((node, RDFS.label, Literal(f"{rule['label']}: {label}" if label else rule["label"])))
        primary = select(e.resource, rule["primary"], e.rtype) if rule["primary"] != e.rtype else []
        self.provenance(node, e, primary[0][1] if primary else
                        (e.rtype if rule["primary"] == e.rtype else f"{e.rtype}.{rule['primary']}"))
        if e is not self.patient:
            g.add((node, NR.subject, patient_iri))
        self.apply(rule["map"], e.resource, e.rtype, node, e)

    def apply(self, maps: list[dict], base_value: Any, base_path: str, node: URIRef, e: Entry):
        g = self.g
        for m in maps:
            prop = URIRef(_expand(m["property"]))
            kind = m["as"]
            if kind == "requested-date":
                d, where = self.requested_date(e)
                if d is not None:
                    g.add((node, prop, Literal(d.isoformat(), datatype=XSD.date)))
                continue
            for value, where in select(base_value, m["element"], base_path):
                if kind == "concept":
                    for c in _codings(value):
                        system, code = c.get("system"), c.get("code")
                        if m.get("systems") and system not in {self.ctx.system_uri(s) for s in m["systems"]}:
                            continue
                        if m.get("code_prefix") and not str(code).startswith(m["code_prefix"]):
                            continue
                        if m.get("code_not_prefix") and str(code).startswith(m["code_not_prefix"]):
                            continue
                        iri = self.ctx.concept(system, code)
                        if iri is not None:
                            g.add((node, prop, iri))
                elif kind == "date":
                    d = _parse_date(value, self.source, e, where)
                    g.add((node, prop, Literal(d.isoformat(), datatype=XSD.date)))
                elif kind in ("decimal", "integer"):
                    num = _number(value)
                    if num is None:
                        raise InputError(f"{value!r} is not a number", source=self.source,
                                         place=e.place(where))
                    if kind == "integer":
                        if num != num.to_integral_value():
                            raise InputError(f"{value!r} is not a whole number", source=self.source,
                                             place=e.place(where))
                        g.add((node, prop, Literal(int(num), datatype=XSD.integer)))
                    else:
                        g.add((node, prop, Literal(num, datatype=XSD.decimal)))
                elif kind in ("string", "code"):
                    codes = _code_of(value) if kind == "code" else [value]
                    for v in codes:
                        if isinstance(v, (str, int, float)):
                            g.add((node, prop, Literal(str(v))))
                elif kind == "reference":
                    ref = value.get("reference") if isinstance(value, dict) else None
                    target = self.fact_of(ref) if ref else None
                    if target is not None:
                        g.add((node, prop, target))
                elif kind == "requester":
                    ref = value.get("reference") if isinstance(value, dict) else None
                    who = self.refs.get(ref) if ref else None
                    text = _person_name(who.resource) if who else None
                    text = text or (value.get("display") if isinstance(value, dict) else None) or ref
                    if text:
                        g.add((node, prop, Literal(text)))
                elif kind == "unit":
                    if isinstance(value, dict):
                        iri = self.ctx.concept(value.get("system"), value.get("code"))
                        if iri is not None:
                            g.add((node, prop, iri))
                elif kind == "duration-days":
                    days = self.duration_days(value, e, where)
                    if days is not None:
                        g.add((node, prop, Literal(days, datatype=XSD.decimal)))
                elif kind == "node":
                    i = where.rsplit("[", 1)[-1].rstrip("]") if where.endswith("]") else "0"
                    child = URIRef(f"{node}-{m['suffix']}-{i}")
                    g.add((node, prop, child))
                    g.add((child, RDF.type, URIRef(_expand(m["class"]))))
                    label = _text(value, {"primary": m.get("recognise_element", "")})
                    g.add((child, RDFS.label, Literal(f"{m['label']}: {label}" if label else m["label"])))
                    self.provenance(child, e, where)
                    self.apply(m["map"], value, where, child, e)
                    if "recognised" in m:
                        coded = [v for v, _ in select(value, m.get("recognise_element", ""), "")]
                        if _codings(coded) and not _matches(self.ctx, coded, m["recognised"]):
                            self.unrecognised(child, e, where, _describe(self.ctx, value, m.get("recognise_element", "")),
                                              f"{m['label']} code not in the conventions (CONVENTIONS §4); "
                                              "kept as given")
                else:
                    raise ValueError(f"fhir-mapping.json: unknown 'as' {kind!r}")

    def requested_date(self, e: Entry) -> tuple[date | None, str | None]:
        """D (§3): occurrenceDateTime, occurrencePeriod.start, earliest occurrenceTiming.event,
        else authoredOn; calendar date parts only."""
        r, t = e.resource, e.rtype
        if "occurrenceDateTime" in r:
            return _parse_date(r["occurrenceDateTime"], self.source, e, f"{t}.occurrenceDateTime"), None
        if isinstance(r.get("occurrencePeriod"), dict) and "start" in r["occurrencePeriod"]:
            return _parse_date(r["occurrencePeriod"]["start"], self.source, e,
                               f"{t}.occurrencePeriod.start"), None
        events = (r.get("occurrenceTiming") or {}).get("event") or []
        if events:
            days = [_parse_date(v, self.source, e, f"{t}.occurrenceTiming.event[{i}]")
                    for i, v in enumerate(events)]
            return min(days), None
        if "authoredOn" in r:
            return _parse_date(r["authoredOn"], self.source, e, f"{t}.authoredOn"), None
        if e is self.index:
            raise InputError("no requested date: neither occurrence[x] nor authoredOn "
                             "(CONVENTIONS §3)", source=self.source,
                             place=e.place(f"{t}.occurrenceDateTime"))
        return None, None

    def duration_days(self, quantity: Any, e: Entry, where: str) -> Decimal | None:
        if not isinstance(quantity, dict):
            return None
        value = _number(quantity.get("value"))
        unit = quantity.get("code") or quantity.get("unit")
        if value is None:
            return None
        factor = self.ctx.days.get(str(unit))
        if factor is None:
            self.unrecognised(URIRef(f"{self.plans[e.full_url].iri}-duration"), e, where,
                              f"{value} {unit}", "duration unit not d, wk, mo or a (CONVENTIONS §3)")
            return None
        return value * factor


def _code_element(rules: list[dict]) -> str:
    for r in rules:
        if r.get("match", {}).get("element"):
            return r["match"]["element"]
    return "code"


def _text(value: Any, rule: dict) -> str | None:
    primary = rule.get("primary", "code")
    for v, _ in select(value, primary, "") if isinstance(value, dict) else []:
        t = _text_of(v)
        if t:
            return t
        if isinstance(v, dict) and "value" in v:
            return f"{v.get('value')} {v.get('unit') or v.get('code') or ''}".strip()
    if isinstance(value, dict):
        return _text_of(value.get("code")) or _text_of(value)
    return None


def _person_name(resource: dict) -> str | None:
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            if name.get("text"):
                return name["text"]
            parts = list(name.get("prefix") or []) + list(name.get("given") or [])
            if name.get("family"):
                parts.append(name["family"])
            if parts:
                return " ".join(parts)
    return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _expand(curie: str) -> str:
    prefix, _, local = curie.partition(":")
    spaces = {"nr": str(NR), "prov": str(PROV), "rdfs": str(RDFS)}
    return spaces[prefix] + local if prefix in spaces else curie


# ---------------------------------------------------------------------------- entry point


def map_bundle(data: dict, source: str, kb: Graph | None = None) -> Graph:
    """Map a FHIR R4 request (collection Bundle, CDS Hooks request or PAS Bundle) to a case graph.

    `data` is the parsed JSON; `source` names the file in messages and picks the case id
    (file stem; `bundle.json` is named by its folder); `kb` is the knowledge graph (concept
    schemes, value sets, unit factors), default the project's knowledge/ folder.
    Raises `InputError` (exit 2) with one line naming the file, entry and element."""
    ctx = context_for(kb)
    flat = flatten(data, source)
    patient, index, refs = check_envelope(flat, ctx, source)
    mapper = _Mapper(flat, ctx, source, patient, index, refs)
    mapper.plan()
    return mapper.run()


def summary(graph: Graph) -> dict[str, list[dict[str, str]]]:
    """The unrecognised and not-counted items of a mapped case, for reports and tests."""
    out: dict[str, list[dict[str, str]]] = {"unrecognised": [], "not_counted": []}
    for key, cls in (("unrecognised", NR.UnrecognisedItem), ("not_counted", NR.NotCountedItem)):
        for node in sorted(graph.subjects(RDF.type, cls)):
            out[key].append({
                "iri": str(node),
                "text": str(graph.value(node, NR.text) or ""),
                "reason": str(graph.value(node, NR.reason) or ""),
                "source": str(graph.value(node, PROV.wasDerivedFrom) or ""),
                "element": str(graph.value(node, NR.sourceElement) or ""),
            })
    return out
