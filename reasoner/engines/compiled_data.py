"""The compiled engine, part 3: the per-case data beside the pyoxigraph store.

`CaseIndex` is the insertion-ordered index of the per-case graph the determination reads facts
from (never the store: oxigraph writes numbers and dates in canonical form, 40.0 as 40);
`Terms` / `CaseTerms` convert rdflib terms to pyoxigraph terms and back, mapping every term a
query result names to the case's (or the knowledge's) own term.
"""

from __future__ import annotations

from pyoxigraph import BlankNode, DefaultGraph, Literal as OxLiteral, NamedNode, Quad
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF, XSD

_XSD_STRING = str(XSD.string)
#: terms of the knowledge base (predicates, classes, concepts) converted once per process
_KB_TERMS_MAX = 200_000


class CaseIndex:
    """The read-only part of rdflib's Graph API the determination uses (`value`, `objects`,
    `subjects`, `subject_objects`, `predicate_objects`, `in`, iteration), over a subject ->
    predicate -> objects index kept in insertion order, as rdflib's memory store keeps it: the
    same triples added in the same order answer the same as an rdflib Graph, at a fraction of
    the cost of building one."""

    __slots__ = ("_spo", "_len")

    def __init__(self):
        self._spo: dict = {}
        self._len = 0

    def add(self, triple) -> bool:
        s, p, o = triple
        objs = self._spo.setdefault(s, {}).setdefault(p, {})
        if o in objs:
            return False
        objs[o] = None
        self._len += 1
        return True

    def merge(self, fragment: dict) -> None:
        """Add the triples of another index's `_spo`, as adding them one by one in its order
        would: a subject new here takes a copy of its whole entry."""
        spo = self._spo
        for s, po in fragment.items():
            if s not in spo:
                entry = spo[s] = {p: objs.copy() for p, objs in po.items()}
                self._len += sum(len(objs) for objs in entry.values())
                continue
            for p, objs in po.items():
                for o in objs:
                    self.add((s, p, o))

    def __contains__(self, triple) -> bool:
        s, p, o = triple
        if p is None or o is None:  # a pattern, as rdflib's `(s, None, None) in graph`
            return next(self.triples(triple), None) is not None
        return o in self._spo.get(s, {}).get(p, ())

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        return self.triples((None, None, None))

    def triples(self, pattern):
        s, p, o = pattern
        for subj in ((s,) if s is not None else tuple(self._spo)):
            for pred, objs in tuple(self._spo.get(subj, {}).items()):
                if p is not None and pred != p:
                    continue
                for obj in tuple(objs):
                    if o is None or obj == o:
                        yield subj, pred, obj

    def value(self, subject=None, predicate=RDF.value, object=None, default=None, any=True):  # noqa: A002
        for obj in self._spo.get(subject, {}).get(predicate, ()):
            return obj
        return default

    def objects(self, subject=None, predicate=None, unique=False):
        for _, _, o in self.triples((subject, predicate, None)):
            yield o

    def subjects(self, predicate=None, object=None, unique=False):  # noqa: A002
        for s, _, _ in self.triples((None, predicate, object)):
            yield s

    def subject_objects(self, predicate=None, unique=False):
        for s, _, o in self.triples((None, predicate, None)):
            yield s, o

    def predicate_objects(self, subject=None, unique=False):
        for _, p, o in self.triples((subject, None, None)):
            yield p, o


class Terms:
    """rdflib <-> pyoxigraph terms. Knowledge-base terms are converted once per process; a
    case's own terms per case (`case()` gives a fresh scope), so memory stays flat."""

    def __init__(self):
        self.kb: dict = {}
        self.kb_back: dict = {}
        self.chunks: dict = {}

    def chunk(self, key, triples) -> tuple[list, dict]:
        """The quads and the index (`CaseIndex._spo`) of a knowledge chunk (`case_chunks`),
        built on first use."""
        cached = self.chunks.get(key)
        if cached is None:
            conv = self.kb_term
            quads = [Quad(conv(s), conv(p), conv(o), DefaultGraph()) for s, p, o in triples]
            index = CaseIndex()
            for t in triples:
                index.add(t)
            cached = (quads, index._spo)
            if len(self.chunks) < _KB_TERMS_MAX:
                self.chunks[key] = cached
        return cached

    def case(self) -> "CaseTerms":
        return CaseTerms(self)

    def kb_term(self, term):
        ox = self.kb.get(term)
        if ox is None:
            ox = to_ox(term)
            if len(self.kb) < _KB_TERMS_MAX:
                self.kb[term] = ox
                self.kb_back.setdefault(ox, term)
        return ox


class CaseTerms:
    def __init__(self, terms: Terms):
        self.terms = terms
        self.fwd: dict = {}
        self.back: dict = {}
        self._by_value: dict | None = None

    def ox(self, term):
        ox = self.terms.kb.get(term)
        if ox is None:
            ox = self.fwd.get(term)
            if ox is None:
                ox = self.fwd[term] = to_ox(term)
                self.back.setdefault(ox, term)
        return ox

    def rdf(self, ox):
        """The case's (or the knowledge's) own term for an oxigraph term; a literal oxigraph
        wrote in canonical form is matched by value; a term no input had (inferred) is new."""
        if ox is None:
            return None
        term = self.back.get(ox)
        if term is None:
            term = self.terms.kb_back.get(ox)
        if term is None:
            term = from_ox(ox)
            if isinstance(term, Literal):
                term = self._literal(term)
        return term

    def _literal(self, lit: Literal) -> Literal:
        if self._by_value is None:
            self._by_value = {}
            for rdf in list(self.fwd) + list(self.terms.kb):
                if isinstance(rdf, Literal) and rdf.datatype is not None:
                    self._by_value.setdefault((rdf.datatype, _value_key(rdf)), rdf)
        if lit.datatype is None:
            return lit
        return self._by_value.get((lit.datatype, _value_key(lit)), lit)


def _value_key(lit: Literal):
    try:
        return lit.toPython() if not lit.ill_typed else str(lit)
    except Exception:  # an ill-formed lexical form compares as text
        return str(lit)


def to_ox(term):
    if isinstance(term, URIRef):
        return NamedNode(str(term))
    if isinstance(term, BNode):
        return BlankNode(str(term))
    if term.language:
        return OxLiteral(str(term), language=term.language)
    if term.datatype is not None:
        return OxLiteral(str(term), datatype=NamedNode(str(term.datatype)))
    return OxLiteral(str(term))


def from_ox(ox):
    if isinstance(ox, NamedNode):
        return URIRef(ox.value)
    if isinstance(ox, BlankNode):
        return BNode(ox.value)
    if ox.language:
        return Literal(ox.value, lang=ox.language)
    dt = ox.datatype.value
    return Literal(ox.value) if dt == _XSD_STRING else Literal(ox.value, datatype=URIRef(dt))
