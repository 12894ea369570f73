"""Small helpers that turn RDF terms into the strings a determination prints."""

from __future__ import annotations

from rdflib import Graph
from rdflib.namespace import SKOS

from ..kb import KnowledgeBase


def local_name(iri) -> str:
    """The last segment of an IRI (a version IRI names its version without spaces)."""
    return str(iri).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def str_or_none(value) -> str | None:
    return str(value) if value is not None else None


def code_of(concept) -> str:
    """The code a concept IRI ends with (`.../icd10cm/M54.17` -> `M54.17`)."""
    return str(concept).rstrip("/").rsplit("/", 1)[-1]


def notation(g: Graph, concept) -> str | None:
    if concept is None:
        return None
    value = g.value(concept, SKOS.notation)
    return str(value) if value is not None else code_of(concept)


def short_label(g: Graph, concept, kb: KnowledgeBase) -> str | None:
    """The concept's skos:altLabel (e.g. "L5", "Left"), else its label, else its notation."""
    if concept is None:
        return None
    for graph in (g, kb.knowledge):
        alt = graph.value(concept, SKOS.altLabel)
        if alt is not None:
            return str(alt)
    return kb.label(concept, (g,)) or notation(g, concept)
