"""The knowledge base: ontology, knowledge graph, inference rules and policy packs, loaded once.

What does not change between cases is computed here, once (engineering notes, "small per-case
graph"): the `rdfs:subClassOf` closure of the ontology, the description of every concept of the
knowledge graph together with its ancestors, the value-set definitions, the prepared inference
rules and each pack's shapes graph.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH, SKOS

from .errors import InputError, KnowledgeError
from .vocab import CODE_BASE, NR, PREFIXES, bind_prefixes


def project_root() -> Path:
    """The folder holding ontology/, knowledge/ and shapes/ (env NECESSITY_HOME overrides)."""
    env = os.environ.get("NECESSITY_HOME")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent


def parse_turtle(path: Path, graph: Graph | None = None, error=KnowledgeError) -> Graph:
    """Parse one Turtle file; a syntax error becomes a one-line error naming file and line."""
    graph = graph if graph is not None else Graph()
    try:
        graph.parse(path, format="turtle")
    except FileNotFoundError:
        raise error("file not found", source=str(path)) from None
    except Exception as exc:  # rdflib raises several types for bad syntax
        raise error(_syntax_message(exc), source=str(path), place=_syntax_line(exc)) from None
    return graph


def _syntax_line(exc: Exception) -> str | None:
    line = getattr(exc, "lines", None)
    if isinstance(line, int):
        return f"line {line + 1}"
    match = re.search(r"line (\d+)", str(exc))
    return f"line {match.group(1)}" if match else None


def _syntax_message(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    match = re.search(r"(expected .*|bad syntax.*|Bad syntax.*)", text)
    text = match.group(1) if match else text
    return "bad Turtle: " + (text[:200] if text else type(exc).__name__)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class PolicyVersion:
    """One version of a policy pack: its IRI, version label, effective period and criteria."""

    iri: URIRef
    version: str
    effective_from: date | None
    effective_until: date | None
    criteria: list[URIRef]

    def in_force_on(self, day: date) -> bool:
        if self.effective_from and day < self.effective_from:
            return False
        if self.effective_until and day > self.effective_until:
            return False
        return True


@dataclass
class PolicyPack:
    """The criteria of one policy (`shapes/<policy-id>/`): a shapes graph plus its metadata."""

    policy_id: str
    folder: Path
    graph: Graph
    policy_iri: URIRef
    title: str
    versions: list[PolicyVersion]
    files: list[Path] = field(default_factory=list)
    _runner: object = None

    def version(self, name: str | None = None, on: date | None = None) -> PolicyVersion:
        """The version named, else the one in force on the date, else the newest."""
        return self.select_version(name, on)[0]

    def select_version(self, name: str | None = None,
                       on: date | None = None) -> tuple[PolicyVersion, str]:
        """The version that decides, and why (said in every determination): the version named
        by the caller; else the one in force on the service date (the latest to take effect if
        several are); else the current (newest) version, because no encoded version was in
        force on that date or the request has no date."""
        if name:
            for v in self.versions:
                if v.version == name or str(v.iri) == name:
                    return v, f"version {v.version} asked for by name"
            known = ", ".join(v.version for v in self.versions)
            raise InputError(f"unknown version {name!r} of policy {self.policy_id} (known: {known})")
        newest = max(self.versions, key=lambda v: v.effective_from or date.min)
        if on is None:
            return newest, "the current version: the request has no service date"
        in_force = [v for v in self.versions if v.in_force_on(on)]
        if in_force:
            chosen = max(in_force, key=lambda v: v.effective_from or date.min)
            return chosen, f"in force on the service date {on.isoformat()}"
        return newest, f"the current version: no encoded version was in force on {on.isoformat()}"

    @cached_property
    def services(self) -> frozenset[URIRef]:
        """The service codes the policy decides (`nr:appliesToService` of the policy)."""
        return frozenset(o for o in self.graph.objects(self.policy_iri, NR.appliesToService)
                         if isinstance(o, URIRef))

    @cached_property
    def illustrative_only(self) -> bool:
        """True for an example pack (`nr:illustrativeOnly true` on its policy node), which
        decides a request only when it is named; routing by service code skips it."""
        value = self.graph.value(self.policy_iri, ILLUSTRATIVE_ONLY)
        return value is not None and value.toPython() is True

    @cached_property
    def condition_shapes(self) -> dict[URIRef, tuple[URIRef, URIRef]]:
        """Condition shape -> (criterion, condition kind)."""
        out = {}
        for shape, criterion in self.graph.subject_objects(NR.conditionOf):
            kind = self.graph.value(shape, NR.conditionKind)
            out[shape] = (criterion, kind)
        return out

    @cached_property
    def sparql_prefixes(self) -> str:
        """PREFIX lines from the pack's sh:declare nodes (SHACL 5.2.1), for trace queries."""
        lines = {}
        for decl in self.graph.objects(None, SH.declare):
            prefix = self.graph.value(decl, SH.prefix)
            ns = self.graph.value(decl, SH.namespace)
            if prefix is not None and ns is not None:
                lines[str(prefix)] = f"PREFIX {prefix}: <{ns}>"
        for prefix, ns in PREFIXES.items():
            lines.setdefault(prefix, f"PREFIX {prefix}: <{ns}>")
        return "\n".join(lines[k] for k in sorted(lines))


class KnowledgeBase:
    """Ontology + knowledge + rules + packs of one project folder."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else project_root()
        self.files: list[Path] = []
        self.ontology = Graph()
        self.knowledge = Graph()
        for path in sorted((self.root / "ontology").glob("*.ttl")):
            parse_turtle(path, self.ontology)
            self.files.append(path)
        for path in sorted((self.root / "knowledge").rglob("*.ttl")):
            parse_turtle(path, self.knowledge)
            self.files.append(path)
        bind_prefixes(self.ontology)
        bind_prefixes(self.knowledge)
        self.rules = self._load_rules()
        self.packs = self._load_packs()
        self._superclasses = self._subclass_closure()
        self._concept_cache: dict[URIRef, list[tuple]] = {}
        self._scheme_by_namespace = self._schemes()

    # ------------------------------------------------------------------ loading

    def _load_rules(self) -> list[tuple[Path, object]]:
        from rdflib.plugins.sparql import prepareQuery  # SPARQL's grammar: only when parsing

        rules = []
        for path in sorted((self.root / "knowledge" / "rules").glob("*.rq")):
            text = path.read_text()
            try:
                rules.append((path, prepareQuery(text, initNs=PREFIXES)))
            except Exception as exc:
                raise KnowledgeError(
                    f"bad SPARQL rule: {' '.join(str(exc).split())[:200]}", source=str(path)
                ) from None
            self.files.append(path)
        return rules

    def _load_packs(self) -> dict[str, PolicyPack]:
        packs = {}
        shapes_dir = self.root / "shapes"
        for folder in sorted(p for p in shapes_dir.iterdir() if p.is_dir()) if shapes_dir.exists() else []:
            ttl = sorted(folder.glob("*.ttl"))
            if not ttl:
                continue
            graph = Graph()
            for path in ttl:
                parse_turtle(path, graph)
            bind_prefixes(graph)
            policy = next(graph.subjects(RDF.type, NR.CoveragePolicy), None)
            if policy is None:
                continue  # e.g. shapes/meta: shapes that check shapes, not a policy
            policy_id = str(graph.value(policy, NR.policyId) or folder.name)
            versions = []
            for v in graph.subjects(NR.versionOf, policy):
                versions.append(
                    PolicyVersion(
                        iri=v,
                        version=str(graph.value(v, OWL.versionInfo) or v),
                        effective_from=as_date(graph.value(v, NR.effectiveFrom)),
                        effective_until=as_date(graph.value(v, NR.effectiveUntil)),
                        criteria=sorted(graph.objects(v, NR.hasCriterion)),
                    )
                )
            if not versions:
                raise KnowledgeError("policy has no nr:PolicyVersion", source=str(folder))
            title = str(graph.value(policy, RDFS.label) or graph.value(policy, _DCT_TITLE) or policy_id)
            packs[policy_id] = PolicyPack(policy_id, folder, graph, policy, title, versions, ttl)
            self.files.extend(ttl)
        return packs

    def _subclass_closure(self) -> dict[URIRef, frozenset[URIRef]]:
        direct: dict[URIRef, set[URIRef]] = {}
        for sub, sup in self.ontology.subject_objects(RDFS.subClassOf):
            if isinstance(sub, URIRef) and isinstance(sup, URIRef):
                direct.setdefault(sub, set()).add(sup)
        closure = {}
        for cls in direct:
            seen, stack = set(), [cls]
            while stack:
                for sup in direct.get(stack.pop(), ()):
                    if sup not in seen:
                        seen.add(sup)
                        stack.append(sup)
            closure[cls] = frozenset(seen)
        return closure

    def _schemes(self) -> dict[str, URIRef]:
        out = {}
        for scheme in self.knowledge.subjects(RDF.type, SKOS.ConceptScheme):
            out[str(scheme) + "/"] = scheme
        return out

    # ------------------------------------------------------------------ queries

    def pack(self, policy_id: str) -> PolicyPack:
        try:
            return self.packs[policy_id]
        except KeyError:
            known = ", ".join(sorted(self.packs)) or "none"
            raise InputError(f"unknown policy {policy_id!r} (known: {known})") from None

    def superclasses(self, cls: URIRef) -> frozenset[URIRef]:
        return self._superclasses.get(cls, frozenset())

    def concept_description(self, concept: URIRef) -> list[tuple]:
        """Triples describing a concept and the concepts it links to (its ancestors by
        skos:broader, anatomy links such as nr:impliedZone), cached.

        A concept the knowledge graph lacks but whose IRI lies in a known scheme's namespace
        gets its notation and scheme from the IRI, so that prefix value sets still match it;
        it stays unrecognised (no skos:Concept type, no label)."""
        cached = self._concept_cache.get(concept)
        if cached is not None:
            return cached
        triples: list[tuple] = []
        seen, stack = set(), [concept]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for p, o in self.knowledge.predicate_objects(node):
                triples.append((node, p, o))
                # ancestors, and concepts reached through anatomy links (an implied zone's role)
                if isinstance(o, URIRef) and str(o).startswith(CODE_BASE):
                    stack.append(o)
        if not triples:
            for ns, scheme in self._scheme_by_namespace.items():
                if str(concept).startswith(ns):
                    from urllib.parse import unquote

                    triples.append((concept, SKOS.notation, Literal(unquote(str(concept)[len(ns):]))))
                    triples.append((concept, SKOS.inScheme, scheme))
                    break
        self._concept_cache[concept] = triples
        return triples

    def code_text(self, concept: URIRef) -> str:
        """A code as a message names it: its notation and code system, e.g. "99213 (CPT)"; a
        code outside every known system is its IRI."""
        scheme = self.knowledge.value(concept, SKOS.inScheme)
        if scheme is None:
            scheme = next((s for ns, s in self._scheme_by_namespace.items()
                           if str(concept).startswith(ns)), None)
        if scheme is None:
            return f"<{concept}> (no known code system)"
        from urllib.parse import unquote

        notation = self.knowledge.value(concept, SKOS.notation)
        code = str(notation) if notation is not None else unquote(str(concept)[len(str(scheme)) + 1:])
        return f"{code} ({self.label(scheme) or scheme})"

    def is_known_concept(self, concept: URIRef) -> bool:
        return (concept, RDF.type, SKOS.Concept) in self.knowledge

    @cached_property
    def value_set_triples(self) -> list[tuple]:
        """Every value-set definition (knowledge and packs): small, always in the case graph."""
        triples = []
        graphs = [self.knowledge] + [p.graph for p in self.packs.values()]
        for g in graphs:
            for vs in set(g.subjects(RDF.type, NR.ValueSet)):
                triples.extend((vs, p, o) for p, o in g.predicate_objects(vs) if not isinstance(o, BNode))
        return triples

    def label(self, node, graphs=()) -> str | None:
        for g in (*graphs, self.knowledge, self.ontology, *[p.graph for p in self.packs.values()]):
            for prop in (SKOS.prefLabel, RDFS.label):
                value = g.value(node, prop)
                if value is not None:
                    return str(value)
        return None

    def label_comment(self, node) -> str | None:
        """The rdfs:comment of an ontology term (e.g. what a denial means)."""
        value = self.ontology.value(node, RDFS.comment)
        return str(value) if value is not None else None

    @cached_property
    def file_hashes(self) -> dict[str, str]:
        """sha256 of every ontology, knowledge, rule and shape file, keyed by relative path."""
        return {
            str(path.relative_to(self.root)): file_hash(path) for path in sorted(set(self.files))
        }


_DCT_TITLE = URIRef("http://purl.org/dc/terms/title")
#: read by IRI: the term is declared by the packs that use it and the ontology
ILLUSTRATIVE_ONLY = URIRef(str(NR) + "illustrativeOnly")


def as_date(value) -> date | None:
    if value is None:
        return None
    py = value.toPython() if isinstance(value, Literal) else None
    if isinstance(py, date):
        return py
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
