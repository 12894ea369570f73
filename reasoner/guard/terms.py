"""The record is the reasoner's, not the case's (issue 12, "The record is the reasoner's").

A case states case facts only. The terms it may not use are derived from the ontology, the
knowledge graph and the rules, so that a new term is covered without a code change:

- record terms: every property declared in the policy module (`ontology/policy.ttl`: policies,
  criteria, determinations) and every property whose `rdfs:domain` is a record class
  (`nr:Determination`, `nr:CriterionResult`, their activity and information requests);
- knowledge terms: every predicate the knowledge graph uses (`knowledge/**/*.ttl`: value sets,
  the code hierarchy, crosswalks, anatomy, units, laterality) and every property declared in
  the terminology and evidence modules;
- inferred terms: every property declared in `ontology/inferred.ttl` and every predicate (and
  `rdf:type` class) a rule of `knowledge/rules/` constructs, so that "inferred" means derived;
- classes: `rdf:type` of a class declared outside the case model (a value set, a concept, a
  determination) or of a class a rule infers (e.g. `nr:ImagingReport`, rule 30).

The case model (`ontology/case.ttl`, `ontology/fhir-provenance.ttl`) and plain description
(`rdfs:label`, `rdfs:comment`, Dublin Core, `prov:wasDerivedFrom`) stay allowed, even where a
rule also constructs the same property for a case that lacks it (rule 50, `nr:requestedDate`).
A case may also not describe a node of the knowledge base or the reasoner's namespaces
(codes, value sets, policies, sources, evidence, determinations, the ontology).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, URIRef, Variable
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS

from ..errors import InputError
from ..vocab import CODE_BASE, DETERMINATION_BASE, EV, NR, POLICY_BASE, SOFTWARE_AGENT, SRC, VS

#: ontology modules that define the case model (their terms a case may state)
CASE_MODULES = ("case.ttl", "fhir-provenance.ttl")
#: the module of policies, criteria and determinations (none of its properties in a case)
RECORD_MODULE = "policy.ttl"
#: modules of knowledge terms (their -ext files included): terminology and evidence
KNOWLEDGE_MODULES = ("terminology", "evidence")
#: the module of the terms the rules infer
INFERRED_MODULE = "inferred.ttl"
#: record classes: a property with one of these as its domain is the reasoner's
RECORD_CLASSES = (NR.Determination, NR.CriterionResult, NR.DeterminationActivity,
                  NR.InformationRequest)
#: description a case may give any of its own nodes (documents, facts)
DESCRIPTION = frozenset({RDF.type, RDFS.label, RDFS.comment, PROV.wasDerivedFrom}
                        | {URIRef(str(DCTERMS) + t) for t in ("title", "date", "source")})
#: namespaces of the reasoner and its knowledge: a case states nothing about their nodes
RESERVED_NAMESPACES = (DETERMINATION_BASE, CODE_BASE, str(VS), POLICY_BASE, str(SRC), str(EV),
                       str(NR), SOFTWARE_AGENT, "https://w3id.org/necessity/ontology/")
_PROPERTY_TYPES = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty, RDF.Property)


@dataclass(frozen=True)
class ReservedTerms:
    """What a case may not state, each set with the reason a message gives."""

    record: frozenset
    knowledge: frozenset
    inferred: frozenset
    classes: frozenset
    described: frozenset

    def reason(self, predicate) -> str | None:
        if predicate in self.record:
            return "a determination or criterion-result term, which only the reasoner states"
        if predicate in self.inferred:
            return "a term the inference rules derive, which a case may not assert"
        if predicate in self.knowledge:
            return ("a knowledge term (value sets, code hierarchy, anatomy), which a case may "
                    "not state")
        return None


def reserved_terms(ontology_dir: Path, knowledge: Graph, rules) -> ReservedTerms:
    """Derive the reserved terms from the ontology files, the knowledge graph and the rules."""
    modules = {p.name: _parse(p) for p in sorted(ontology_dir.glob("*.ttl"))}
    case_model: set = set()
    for name in CASE_MODULES:
        if name in modules:
            case_model |= _declared(modules[name])
    ontology = Graph()
    for g in modules.values():
        ontology += g
    record = set(_declared(modules.get(RECORD_MODULE, Graph())))
    for cls in RECORD_CLASSES:
        record |= set(ontology.subjects(RDFS.domain, cls))
    knowledge_terms = set(knowledge.predicates())
    knowledge_classes = set()
    for name, g in modules.items():
        if name.startswith(KNOWLEDGE_MODULES):
            knowledge_terms |= _declared(g)
            knowledge_classes |= set(g.subjects(RDF.type, OWL.Class))
    inferred = set(_declared(modules.get(INFERRED_MODULE, Graph())))
    inferred_classes = set()
    for _, rule in rules:
        for s, p, o in _template(rule):
            if p == RDF.type and isinstance(o, URIRef):
                inferred_classes.add(o)
            elif isinstance(p, URIRef):
                inferred.add(p)
    allowed = case_model | DESCRIPTION
    case_classes = {c for c in case_model if (c, RDF.type, OWL.Class) in ontology}
    other_classes = knowledge_classes | set(RECORD_CLASSES)
    other_classes |= set(modules.get(RECORD_MODULE, Graph()).subjects(RDF.type, OWL.Class))
    other_classes |= {o for o in knowledge.objects(None, RDF.type) if isinstance(o, URIRef)}
    return ReservedTerms(
        record=frozenset(record - allowed),
        knowledge=frozenset(knowledge_terms - allowed),
        inferred=frozenset(inferred - allowed),
        classes=frozenset((other_classes - case_classes) | inferred_classes),
        described=frozenset(s for s in knowledge.subjects() if isinstance(s, URIRef)),
    )


def check_terms(graph: Graph, source: str, terms: ReservedTerms) -> None:
    """The first case triple (in sorted order) that states what only the reasoner or its
    knowledge may state is an `InputError` naming its subject and predicate."""
    # Most cases state nothing reserved: one pass finds that; only a case that does is sorted,
    # so that the triple named is the first in sorted order, whatever the input order was.
    if not any(_refusal(t, terms) for t in graph):
        return
    for s, p, o in sorted(graph, key=lambda t: (str(t[0]), str(t[1]), str(t[2]))):
        message = _refusal((s, p, o), terms)
        if message:
            raise InputError(message, source=source, place=f"<{s}> <{p}>")


def _refusal(triple, terms: ReservedTerms) -> str | None:
    """Why a case may not state `triple`, or None."""
    s, p, o = triple
    if _reserved(s, DETERMINATION_BASE) or _reserved(o, DETERMINATION_BASE):
        return "a case may not state anything about a determination (the record is the reasoner's)"
    reason = terms.reason(p)
    if reason:
        return f"the case states {_short(p)}: {reason}"
    if p == RDF.type and o in terms.classes:
        return (f"the case types a node as {_short(o)}, a class only the knowledge base or the "
                f"rules assign")
    if isinstance(s, URIRef) and (s in terms.described or s.startswith(RESERVED_NAMESPACES)):
        return (f"the case states a fact about {_short(s)}, a node of the knowledge base; a case "
                f"describes only its own nodes")
    return None


def _reserved(term, namespace: str) -> bool:
    return isinstance(term, URIRef) and str(term).startswith(namespace)


def _short(term) -> str:
    text = str(term)
    if text.startswith(str(NR)):
        return "nr:" + text[len(str(NR)):]
    return f"<{text}>"


def _parse(path: Path) -> Graph:
    return Graph().parse(path, format="turtle")


def _declared(g: Graph) -> set:
    out = set()
    for t in (*_PROPERTY_TYPES, OWL.Class):
        out |= {s for s in g.subjects(RDF.type, t) if isinstance(s, URIRef)}
    return out


def _template(query) -> list[tuple]:
    """The triple patterns of a prepared CONSTRUCT query's template."""
    return [t for t in (getattr(query.algebra, "template", None) or [])
            if not isinstance(t[1], Variable)]
