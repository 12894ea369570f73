"""Check 5 of `reasoner check`: every IRI in a project namespace (`nr:`, the code systems,
`vs:`) used in triples or in SPARQL text is declared somewhere (kind `undeclared-iri`)."""

from __future__ import annotations

import difflib
import re

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, SKOS

from ..vocab import NR, PREFIXES
from .problems import PROJECT_NAMESPACES, Problem
from .project import _QUERY_PROPS, Project, SourceFile, _short, pack_prefix_lines

# ---------------------------------------------------------------------- declared IRIs


_PNAME_RE = re.compile(r"(?<![\w:/#.<?$-])([A-Za-z][\w-]*):((?:[\w%]|[.\-](?=[\w%-]))+)")
_FULL_IRI_RE = re.compile(r"<(https://w3id\.org/necessity/[^>\s]*)>")


def declared_terms(project: Project) -> set[URIRef]:
    """IRIs declared: typed subjects of the ontology, concepts and schemes of the code systems,
    value sets (knowledge and packs)."""
    declared: set[URIRef] = set()
    for f in project.area("ontology"):
        declared.update(s for s in f.graph.subjects(RDF.type, None) if isinstance(s, URIRef))
    for f in project.area("knowledge", "shapes"):
        for cls in (SKOS.Concept, SKOS.ConceptScheme, NR.ValueSet):
            declared.update(s for s in f.graph.subjects(RDF.type, cls) if isinstance(s, URIRef))
    return declared


def _in_project_namespace(iri: str) -> bool:
    """A term IRI in a project namespace; namespace IRIs themselves (ending in / or #, as rules
    write them in STRSTARTS tests) are not terms."""
    if iri.endswith("/") or iri.endswith("#"):
        return False
    return any(iri.startswith(ns) and len(iri) > len(ns) for ns in PROJECT_NAMESPACES)


def check_declared(project: Project) -> list[Problem]:
    """Every project-namespace IRI used in knowledge, shapes and cases (triples and SPARQL text)
    is declared. Scheme IRIs (the code namespace without '/') count as declared when typed."""
    declared = declared_terms(project)
    problems = []
    seen: set[tuple[str, str]] = set()

    def report(f: SourceFile, iri: str, token: str | None, where: str):
        key = (f.rel, iri)
        if key in seen:
            return
        seen.add(key)
        line = f.find(token) if token else f.line_of(URIRef(iri), subject=False)
        suggestion = _suggest(iri, declared)
        problems.append(Problem(
            "undeclared-iri", f"{token or '<' + iri + '>'} ({where}) is not declared in the ontology, "
            "a code system or a value set" + (f"; did you mean {suggestion}?" if suggestion else ""),
            "correct the spelling, or declare the term (ontology/*.ttl, knowledge/codes/*.ttl, "
            "knowledge/value-sets.ttl)", f.rel, line, subject=iri))

    for f in project.area("knowledge", "shapes", "cases"):
        for triple in f.graph:
            for position, node in zip(("subject", "predicate", "object"), triple):
                if isinstance(node, URIRef) and _in_project_namespace(str(node)) and node not in declared:
                    if position == "subject" and f.area != "cases":
                        continue  # a subject written in knowledge or a pack is a definition
                    report(f, str(node), None, f"used as {position}")
        if f.area == "shapes":
            prefixes = pack_prefix_lines(f.graph)
            prefixes.update(f.prefixes)
            for s, p, o in f.graph:
                if p in _QUERY_PROPS and isinstance(o, Literal):
                    _scan_sparql(str(o), prefixes, declared, lambda iri, tok: report(f, iri, tok, "in SPARQL"))
    for f in project.rq_files:
        if f.area == "qc":
            continue  # QC queries name terms to look for, e.g. owl:deprecated
        prefixes = {k: str(v) for k, v in PREFIXES.items()}
        prefixes.update(f.prefixes)
        _scan_sparql(f.text, prefixes, declared, lambda iri, tok: report(f, iri, tok, "in SPARQL"))
    return problems


def _scan_sparql(text: str, prefixes: dict[str, str], declared: set, report) -> None:
    body = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # string literals hold no IRIs
    body = re.sub(r"(?m)#.*$", "", body)  # nor do comments
    for m in _PNAME_RE.finditer(body):
        ns = prefixes.get(m.group(1))
        if ns is None:
            continue
        iri = ns + m.group(2)
        if _in_project_namespace(iri) and URIRef(iri) not in declared:
            report(iri, m.group(0))
    for m in _FULL_IRI_RE.finditer(body):
        iri = m.group(1)
        if _in_project_namespace(iri) and URIRef(iri) not in declared:
            report(iri, f"<{iri}>")


def _suggest(iri: str, declared: set) -> str | None:
    ns = iri[: max(iri.rfind("#"), iri.rfind("/")) + 1]
    candidates = [str(d)[len(ns):] for d in declared if str(d).startswith(ns)]
    close = difflib.get_close_matches(iri[len(ns):], candidates, n=1, cutoff=0.8)
    return _short(URIRef(ns + close[0])) if close else None
