"""The mapping table (`fhir-mapping.json`) and the knowledge it is read with.

A `Context` holds, per knowledge graph, the system aliases, FHIR system -> concept namespaces
(`skos:ConceptScheme` + `dcterms:identifier`), value sets (`vs:<name>`, else the table's
fallback copies), UCUM day factors and the rules by resource type. Format: README.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote, unquote

from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, RDF, SKOS

from ..vocab import NR, VS
from .elements import codings

MAPPING_FILE = Path(__file__).with_name("fhir-mapping.json")
_IRI_SAFE = "-._~!$&'()*+,;=:@"


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
    exact: dict[str, str] = field(default_factory=dict)  # concept → skos:exactMatch concept
    ingredients: dict[str, frozenset[str]] = field(default_factory=dict)  # product → ingredients

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
        """The concept IRI of a coding; a coding the table's `read_as` names is read as the
        code of the other system (pattern) or as the concept its exactMatch names."""
        rule = self.table.get("read_as", {}).get(system or "")
        if rule and "as" in rule and code is not None:
            if re.match(rule.get("pattern", ".*"), str(code)):
                system = self.system_uri(rule["as"])
        ns = self.namespace(system)
        if ns is None or code is None or str(code) == "":
            return None
        iri = ns + quote(str(code), safe=_IRI_SAFE)
        if rule and "exact_match" in rule:
            target_ns = self.namespace(self.system_uri(rule["exact_match"])) or ""
            match = self.exact.get(iri)
            if match and match.startswith(target_ns):
                iri = match
        return URIRef(iri)

    def in_valueset(self, iri: Any, vs: "ValueSet") -> bool:
        """Membership, a product counting as its ingredients (nr:hasIngredient)."""
        if iri is None:
            return False
        return str(iri) in vs or any(i in vs for i in self.ingredients.get(str(iri), ()))

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
        ctx.exact = {str(s): str(o) for s, o in kb.subject_objects(SKOS.exactMatch)}
        ingredients: dict[str, set[str]] = {}
        for product, ingredient in kb.subject_objects(NR.hasIngredient):
            ingredients.setdefault(str(product), set()).add(str(ingredient))
        ctx.ingredients = {k: frozenset(v) for k, v in ingredients.items()}
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



def has_code(ctx: Context, value: Any, system_alias: str, codes: Iterable[str]) -> bool:
    system = ctx.system_uri(system_alias)
    wanted = set(codes)
    return any(c.get("system") == system and str(c.get("code")) in wanted for c in codings(value))


def matches(ctx: Context, value: Any, matchers: list[dict]) -> bool:
    """Does any coding of the element fall in one of the value sets / code sets?"""
    for coding in codings(value):
        system, code = coding.get("system"), coding.get("code")
        if system is None or code is None:
            continue
        iri = ctx.concept(system, code)
        for m in matchers:
            if "valueset" in m:
                vs = ctx.valuesets.get(m["valueset"])
                if vs is not None and ctx.in_valueset(iri, vs):
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

