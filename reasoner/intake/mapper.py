"""The mapping proper: each flattened entry -> a fact, a not-counted or an unrecognised item,
by the rules of `fhir-mapping.json`, with provenance on every node."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD

from ..errors import InputError
from ..vocab import CASE_BASE, NR, bind_prefixes
from . import dates
from .checks import parse_date
from .elements import (code_element, code_of, codings, describe, expand, number, person_name,
                       select, text_for)
from .envelope import MAX_FACTS, Entry, Flattened
from .tables import Context, has_code, matches


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
        values = [v for node, _ in select(resource, cond["element"], "") for v in code_of(node)]
        shown = ", ".join(values) if values else "absent"
        if not values and cond.get("absent") == "counts":
            continue  # e.g. an encounter diagnosis without clinicalStatus (R4 con-3 allows it)
        if "in" in cond and not any(v in cond["in"] for v in values):
            return (f"{resource['resourceType']}.{cond['element']} is {shown}; counts only when "
                    f"{' or '.join(cond['in'])} (input contract, section 1 rule 6)")
        if "not_in" in cond and any(v in cond["not_in"] for v in values):
            return (f"{resource['resourceType']}.{cond['element']} is {shown}; does not count "
                    f"when {' or '.join(cond['not_in'])} (input contract, section 1 rule 6)")
    return None


def _rule_matches(ctx: Context, rule: dict, resource: dict) -> bool:
    match = rule.get("match")
    if not match:
        return True
    cat = match.get("category")
    if cat and not has_code(ctx, resource.get("category"), cat["system"], [cat["code"]]):
        return False
    for cond in match.get("where", []):  # e.g. a completed CarePlan is a past therapy episode
        values = [v for node, _ in select(resource, cond["element"], "") for v in code_of(node)]
        if not any(v in cond["in"] for v in values):
            return False
    if "code" in match:
        element = match.get("element", "code")
        values = [v for v, _ in select(resource, element, "")]
        if not matches(ctx, values, match["code"]):
            return False
    return True




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
                        reason = (f"{e.rtype} with {describe(self.ctx, e.resource, code_element(candidates))}"
                                  ": code not in the conventions (input contract, section 4)")
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
        facts = sum(1 for p in self.plans.values() if p.kind == "fact")
        if facts > MAX_FACTS:
            raise InputError(f"{facts} facts; over the limit of {MAX_FACTS} facts per record "
                             "(send the record of the episode, not the lifetime)",
                             source=self.source, place="Bundle.entry")

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
                self.unrecognised(p.iri, e, e.rtype, describe(self.ctx, e.resource), p.reason)
                continue
            if p.kind == "not-counted":
                node = URIRef(f"{p.iri}-not-counted")
                g.add((node, RDF.type, NR.NotCountedItem))
                g.add((self.case, NR.hasNotCountedItem, node))
                g.add((node, NR.text, Literal(f"{p.rule['label']}: {text_for(e.resource, p.rule)}")))
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
        g.add((node, RDF.type, URIRef(expand(rule["class"]))))
        if rule["primary"] == e.rtype:
            label = e.resource.get("title") or e.resource.get("description") or None
        else:
            label = text_for(e.resource, rule)
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
            prop = URIRef(expand(m["property"]))
            kind = m["as"]
            if kind == "requested-date":
                d, late, where, text = self.requested_date(e)
                if d is not None:
                    g.add((node, prop, Literal(d.isoformat(), datatype=XSD.date)))
                    if late is not None:
                        dates.record(g, self.case, node, prop, text, d, late, where)
                continue
            for value, where in select(base_value, m["element"], base_path):
                if kind == "concept":
                    for c in codings(value):
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
                    d, late = self.day(value, e, where)
                    g.add((node, prop, Literal(d.isoformat(), datatype=XSD.date)))
                    if late is not None:
                        dates.record(g, self.case, node, prop, str(value), d, late, where)
                elif kind in ("decimal", "integer"):
                    num = number(value)
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
                    codes = code_of(value) if kind == "code" else [value]
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
                    text = person_name(who.resource) if who else None
                    text = text or (value.get("display") if isinstance(value, dict) else None) or ref
                    if text:
                        g.add((node, prop, Literal(text)))
                elif kind == "level-count":
                    self.level_count(value, e, where, node, prop)
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
                    g.add((child, RDF.type, URIRef(expand(m["class"]))))
                    label = text_for(value, {"primary": m.get("recognise_element", "")})
                    g.add((child, RDFS.label, Literal(f"{m['label']}: {label}" if label else m["label"])))
                    self.provenance(child, e, where)
                    self.apply(m["map"], value, where, child, e)
                    if "recognised" in m:
                        coded = [v for v, _ in select(value, m.get("recognise_element", ""), "")]
                        if codings(coded) and not matches(self.ctx, coded, m["recognised"]):
                            self.unrecognised(child, e, where, describe(self.ctx, value, m.get("recognise_element", "")),
                                              f"{m['label']} code not in the conventions (input contract, section 4); "
                                              "kept as given")
                else:
                    raise ValueError(f"fhir-mapping.json: unknown 'as' {kind!r}")

    def day(self, value: Any, e: Entry, where: str) -> tuple[date, date | None]:
        """(date, None) for a calendar date; (earliest, latest) for a year or year-month."""
        both = dates.completions(value)
        if both is not None:
            return both[0], both[1]
        return parse_date(value, self.source, e, where), None

    def requested_date(self, e: Entry):
        """D (§3): occurrenceDateTime, occurrencePeriod.start, earliest occurrenceTiming.event,
        else authoredOn; calendar date parts only. Returns (D, latest completion when D is a
        partial date, element, the date as sent)."""
        r, t = e.resource, e.rtype
        if "occurrenceDateTime" in r:
            return (*self.day(r["occurrenceDateTime"], e, f"{t}.occurrenceDateTime"),
                    f"{t}.occurrenceDateTime", str(r["occurrenceDateTime"]))
        if isinstance(r.get("occurrencePeriod"), dict) and "start" in r["occurrencePeriod"]:
            return (*self.day(r["occurrencePeriod"]["start"], e, f"{t}.occurrencePeriod.start"),
                    f"{t}.occurrencePeriod.start", str(r["occurrencePeriod"]["start"]))
        events = (r.get("occurrenceTiming") or {}).get("event") or []
        if events:
            days = [self.day(v, e, f"{t}.occurrenceTiming.event[{i}]")
                    for i, v in enumerate(events)]
            i = min(range(len(days)), key=lambda k: days[k][0])
            late = min(d[1] or d[0] for d in days) if any(d[1] for d in days) else None
            return days[i][0], late, f"{t}.occurrenceTiming.event[{i}]", str(events[i])
        if "authoredOn" in r:
            return (*self.day(r["authoredOn"], e, f"{t}.authoredOn"), f"{t}.authoredOn",
                    str(r["authoredOn"]))
        if e is self.index:
            raise InputError("no requested date: neither occurrence[x] nor authoredOn "
                             "(input contract, section 3)", source=self.source,
                             place=e.place(f"{t}.occurrenceDateTime"))
        return None, None, None, None

    def level_count(self, quantity: Any, e: Entry, where: str, node: URIRef, prop: URIRef):
        """A level count only from a quantity whose code or unit is a level unit (table
        `level_units`); any other quantity is reported and the count stays absent."""
        if not isinstance(quantity, dict) or quantity.get("value") is None:
            return
        units = {str(u).lower() for u in (quantity.get("code"), quantity.get("unit")) if u}
        if not units & set(self.ctx.table["level_units"]):
            shown = quantity.get("unit") or quantity.get("code") or "no unit"
            self.unrecognised(URIRef(f"{self.plans[e.full_url].iri}-quantity"), e, where,
                              f"{quantity.get('value')} {shown}",
                              "quantity is not a level count (unit level, input contract, section 4.2); "
                              "the level count is absent")
            return
        num = number(quantity.get("value"))
        if num is None or num != num.to_integral_value():
            raise InputError(f"{quantity.get('value')!r} is not a whole number", source=self.source,
                             place=e.place(where + ".value"))
        self.g.add((node, prop, Literal(int(num), datatype=XSD.integer)))

    def duration_days(self, quantity: Any, e: Entry, where: str) -> Decimal | None:
        if not isinstance(quantity, dict):
            return None
        value = number(quantity.get("value"))
        unit = quantity.get("code") or quantity.get("unit")
        if value is None:
            return None
        factor = self.ctx.days.get(str(unit))
        if factor is None:
            self.unrecognised(URIRef(f"{self.plans[e.full_url].iri}-duration"), e, where,
                              f"{value} {unit}", "duration unit not d, wk, mo or a (input contract, section 3)")
            return None
        return value * factor


