"""The documentation questions of the knowledge graph (ontology/questionnaire.ttl,
knowledge/questionnaire/questions.ttl), read once per knowledge base.

A question is one fact a missing condition needs (Da Vinci DTR: the questionnaire gathers the
documentation a payer's rules need). Everything medical about it is data: its text, its parts,
each part's type (from the case-model property's `rdfs:range`, or `nr:answerDatatype`), its
answer options (a value set's `nr:includesCode`, or `nr:answerOption`), its UCUM units, its
possible range, and the SPARQL update that records an answer. This module only reads them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from decimal import Decimal

from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS, XSD

from ..errors import KnowledgeError
from ..vocab import NR

#: XML Schema datatype -> FHIR Questionnaire item type (FHIR R4 "item-type" value set)
ITEM_TYPES = {
    XSD.date: "date", XSD.dateTime: "dateTime", XSD.decimal: "decimal", XSD.double: "decimal",
    XSD.integer: "integer", XSD.nonNegativeInteger: "integer", XSD.boolean: "boolean",
    XSD.string: "string",
}


@dataclass(frozen=True)
class Option:
    """A coded answer option: the concept, its FHIR system, code and display."""

    concept: URIRef
    system: str
    code: str
    display: str

    def coding(self) -> dict:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class Part:
    name: str
    text: str
    item_type: str
    options: tuple[Option, ...] = ()
    units: tuple[Option, ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None


@dataclass(frozen=True)
class Question:
    iri: URIRef
    link_id: str
    text: str
    order: int
    parts: tuple[Part, ...]
    update: str
    conditions: frozenset[URIRef]


class QuestionBook:
    """Every documentation question of a knowledge base, by the missing condition it answers."""

    def __init__(self, kb):
        self.kb = kb
        graphs = (kb.knowledge, kb.ontology)
        self.questions: dict[str, Question] = {}
        self.by_condition: dict[URIRef, list[Question]] = {}
        for iri in sorted(kb.knowledge.subjects(RDF.type, NR.DocumentationQuestion)):
            q = self._question(kb.knowledge, iri, graphs)
            self.questions[q.link_id] = q
            for shape in q.conditions:
                self.by_condition.setdefault(shape, []).append(q)

    def _question(self, g: Graph, iri: URIRef, graphs) -> Question:
        link_id = str(iri).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        parts = [p for _, p in sorted(
            ((int(g.value(n, NR.questionOrder) or 0), self._part(g, n, iri))
             for n in g.objects(iri, NR.hasAnswerPart)), key=lambda t: (t[0], t[1].name))]
        update = g.value(iri, NR.answerUpdate)
        if not parts or update is None:
            raise KnowledgeError(f"documentation question <{iri}> needs nr:hasAnswerPart and "
                                 f"nr:answerUpdate", source="knowledge/questionnaire")
        return Question(
            iri=iri, link_id=link_id,
            text=str(g.value(iri, NR.questionText) or g.value(iri, RDFS.label) or link_id),
            order=int(g.value(iri, NR.questionOrder) or 0),
            parts=tuple(parts), update=str(update),
            conditions=frozenset(g.objects(iri, NR.answersCondition)))

    def _part(self, g: Graph, node, question) -> Part:
        name = str(g.value(node, NR.partName) or "answer")
        prop = g.value(node, NR.answerProperty)
        datatype = g.value(node, NR.answerDatatype)
        if datatype is None and prop is not None:
            datatype = self.kb.ontology.value(prop, RDFS.range)
        options = [self._option(c) for c in g.objects(node, NR.answerOption)]
        for vs in g.objects(node, NR.answerValueSet):
            options += [self._option(c) for c in g.objects(vs, NR.includesCode)]
        units = tuple(sorted((self._option(u) for u in g.objects(node, NR.answerUnit)),
                             key=lambda o: o.code))
        if options or datatype == SKOS.Concept:
            item_type = "choice"
        elif units:
            item_type = "quantity"
        else:
            item_type = ITEM_TYPES.get(datatype)
        if item_type is None:
            raise KnowledgeError(f"answer part {name!r} of <{question}>: no item type (give "
                                 f"nr:answerDatatype or a property with an rdfs:range)",
                                 source="knowledge/questionnaire")
        minimum, maximum = g.value(node, NR.answerMinimum), g.value(node, NR.answerMaximum)
        return Part(
            name=name, text=str(g.value(node, NR.questionText) or name), item_type=item_type,
            options=tuple(sorted(set(options), key=lambda o: (o.system, o.code))), units=units,
            minimum=Decimal(str(minimum)) if minimum is not None else None,
            maximum=Decimal(str(maximum)) if maximum is not None else None)

    def _option(self, concept: URIRef) -> Option:
        kb = self.kb
        scheme = kb.knowledge.value(concept, SKOS.inScheme)
        system = kb.knowledge.value(scheme, DCTERMS.identifier) if scheme is not None else None
        notation = kb.knowledge.value(concept, SKOS.notation)
        if system is None or notation is None:
            raise KnowledgeError(f"answer option <{concept}> has no code system identifier or "
                                 f"notation in the knowledge graph", source="knowledge/questionnaire")
        return Option(concept, str(system), str(notation), kb.label(concept) or str(notation))

    def for_condition(self, shape: URIRef) -> list[Question]:
        return self.by_condition.get(URIRef(shape), [])


_BOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def question_book(kb) -> QuestionBook:
    """The questions of `kb`, read once."""
    book = _BOOKS.get(kb)
    if book is None:
        book = _BOOKS[kb] = QuestionBook(kb)
    return book
