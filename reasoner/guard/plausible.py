"""Input plausibility (issue 12, "Input plausibility"): values a case model property cannot
have are input errors naming the triple, never a traceback, a rule failure or a silent verdict.

- a literal its datatype does not accept (`"2026-04-31"^^xsd:date`, `"two"^^xsd:integer`);
- a date-valued property (the case model says "xsd:date" in its comment: the properties
  declare no rdfs:range, see ontology/case.ttl) with a value that is not a calendar date:
  a date-time (`xsd:dateTime`) or an untyped string is refused, since every window and
  duration is measured in whole days (docs/fhir-contract.md §3);
- a numeric property (rdfs:range xsd:integer or xsd:decimal) with a value that is not a number;
- facts that cannot all be true: a patient born after the requested date, a level count
  (`nr:levelQuantity`) of zero or less, a period that ends before it starts.

Each is refused (exit code 2) rather than read as a missing fact: the input contradicts
itself, so no verdict drawn from it could be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from ..errors import InputError
from ..vocab import NR

_NUMERIC_RANGES = (XSD.integer, XSD.decimal, XSD.double, XSD.float, XSD.nonNegativeInteger,
                   XSD.positiveInteger, XSD.int, XSD.long)


@dataclass(frozen=True)
class ValueTypes:
    """Date-valued and numeric properties of the case model, read from the ontology."""

    dates: frozenset
    numbers: frozenset


def value_types(ontology: Graph) -> ValueTypes:
    dates = {p for p, c in ontology.subject_objects(RDFS.comment)
             if isinstance(p, URIRef) and "xsd:date" in str(c) and "xsd:dateTime" not in str(c)}
    numbers = {p for p, r in ontology.subject_objects(RDFS.range) if r in _NUMERIC_RANGES}
    return ValueTypes(frozenset(dates), frozenset(numbers))


def check_values(graph: Graph, source: str, types: ValueTypes) -> None:
    """Every literal well-typed; dates and numbers where the case model wants them. The
    triple named is the first refused in sorted order (one pass finds whether there is one)."""
    if not any(_value_refusal(t, types) for t in graph):
        return
    for s, p, o in sorted(graph, key=lambda t: (str(t[0]), str(t[1]), str(t[2]))):
        message = _value_refusal((s, p, o), types)
        if message:
            raise InputError(message, source=source, place=f"<{s}> <{p}>")


def _value_refusal(triple, types: ValueTypes) -> str | None:
    """Why the value of `triple` is refused, or None."""
    _, p, o = triple
    if isinstance(o, Literal) and getattr(o, "ill_typed", False):
        return f"{str(o)!r} is not a valid {_dt(o.datatype)}"
    if p in types.dates:
        if not isinstance(o, Literal) or o.datatype in (None, XSD.string, XSD.dateTime):
            what = "a date-time" if isinstance(o, Literal) and o.datatype == XSD.dateTime \
                else repr(str(o))
            return f"{what} where a calendar date (xsd:date, YYYY-MM-DD) is required"
    if p in types.numbers:
        if not isinstance(o, Literal) or not isinstance(o.toPython(), (int, float, Decimal)) \
                or isinstance(o.toPython(), bool):
            return f"{str(o)!r} is not a number"
    return None


def check_plausible(graph: Graph, source: str) -> None:
    """Facts that contradict each other or the request (module docstring)."""
    for case in sorted(graph.subjects(RDF.type, NR.PriorAuthorizationCase)):
        for request in sorted(graph.objects(case, NR.indexRequest)):
            day = _date(graph.value(request, NR.requestedDate)) \
                or _date(graph.value(request, NR.authoredOn))
            patients = set(graph.objects(case, NR.patient))
            patients |= set(graph.objects(request, NR.subject))
            for patient in sorted(patients):
                born = _date(graph.value(patient, NR.birthDate))
                if born and day and born > day:
                    raise InputError(f"the patient is born ({born}) after the requested date "
                                     f"({day})", source=source,
                                     place=f"<{patient}> <{NR.birthDate}>")
    for s, q in sorted(graph.subject_objects(NR.levelQuantity)):
        if isinstance(q, Literal) and isinstance(q.toPython(), (int, float, Decimal)) \
                and q.toPython() <= 0:
            raise InputError(f"a level count of {q}; at least one level is requested",
                             source=source, place=f"<{s}> <{NR.levelQuantity}>")
    for s, end in sorted(graph.subject_objects(NR.periodEnd)):
        start = _date(graph.value(s, NR.periodStart))
        end = _date(end)
        if start and end and end < start:
            raise InputError(f"the period ends ({end}) before it starts ({start})",
                             source=source, place=f"<{s}> <{NR.periodEnd}>")


def _date(value) -> date | None:
    py = value.toPython() if isinstance(value, Literal) else None
    return py if isinstance(py, date) and not isinstance(py, datetime) else None


def _dt(datatype) -> str:
    text = str(datatype) if datatype is not None else "string"
    return "xsd:" + text[len(str(XSD)):] if text.startswith(str(XSD)) else text
