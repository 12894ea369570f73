"""Partial dates ("2004", "2004-05"): FHIR R4 `date`/`dateTime` allow year and year-month
precision (R4 §2.24.0.1 primitive types). They never abort a case.

Intake writes the earliest completion (first day of the year or month) as the fact's value and
records an `nr:PartialDate` node on the case: the fact, the property, the earliest and the
latest completion, the date as sent and its element. `determine()` then decides the case twice,
with the earliest and with the latest completion of every partial date; a criterion whose
status agrees is decided, one whose status differs is `missing` with a message naming the date
that needs a day. A partial birthDate only moves the age.

Ontology terms used (declared in ontology/case.ttl): nr:PartialDate,
nr:hasPartialDate, nr:onFact, nr:onProperty, nr:earliestDate, nr:latestDate.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from datetime import date
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from ..vocab import NR

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def completions(value: Any) -> tuple[date, date] | None:
    """(earliest, latest) completion of a year or year-month date; None if it is not one."""
    if not isinstance(value, str):
        return None
    m = _PARTIAL.match(value)
    if not m:
        return None
    year = int(m.group(1))
    if m.group(2) is None:
        return (date(year, 1, 1), date(year, 12, 31)) if year >= 1 else None
    month = int(m.group(2))
    if not 1 <= month <= 12 or year < 1:
        return None
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def record(g: Graph, case: URIRef, fact: URIRef, prop: URIRef, text: str, earliest: date,
           latest: date, element: str) -> None:
    node = BNode()
    g.add((case, NR.hasPartialDate, node))
    g.add((node, RDF.type, NR.PartialDate))
    g.add((node, NR.onFact, fact))
    g.add((node, NR.onProperty, prop))
    g.add((node, NR.text, Literal(text)))
    g.add((node, NR.earliestDate, Literal(earliest.isoformat(), datatype=XSD.date)))
    g.add((node, NR.latestDate, Literal(latest.isoformat(), datatype=XSD.date)))
    g.add((node, NR.sourceElement, Literal(element)))


def partial_dates(g: Graph) -> list[dict]:
    out = []
    for node in g.subjects(RDF.type, NR.PartialDate):
        out.append({k: g.value(node, p) for k, p in (
            ("fact", NR.onFact), ("prop", NR.onProperty), ("text", NR.text),
            ("earliest", NR.earliestDate), ("latest", NR.latestDate),
            ("element", NR.sourceElement))})
    return sorted(out, key=lambda d: (str(d["element"]), str(d["fact"]), str(d["prop"])))


def latest_completion(g: Graph, partial: list[dict]) -> Graph:
    """A copy of the case graph with every partial date at its latest completion."""
    out = Graph()
    out += g
    for p in partial:
        out.remove((p["fact"], p["prop"], p["earliest"]))
        out.add((p["fact"], p["prop"], p["latest"]))
    for prefix, ns in g.namespaces():
        out.bind(prefix, ns, override=False)
    return out


def determine(determiner, case, policy_id: str, version: str | None = None):
    """Decide with both completions of the partial dates and merge (module docstring)."""
    first = determiner.determine(case, policy_id, version)
    partial = partial_dates(case.graph)
    if not partial:
        return first
    other = dataclasses.replace(case, graph=latest_completion(case.graph, partial))
    second = determiner.determine(other, policy_id, version)
    return merge(first, second, partial)


def merge(first, second, partial: list[dict]):
    from ..model import InformationRequest

    later = {c.ref: c for c in second.criteria}
    dates = "; ".join(f"{p['element']} '{p['text']}'" for p in partial)
    changed = False
    for c in first.criteria:
        other = later.get(c.ref)
        if other is None or other.status == c.status:
            continue
        changed = True
        earliest = ", ".join(str(p["earliest"]) for p in partial)
        latest = ", ".join(str(p["latest"]) for p in partial)
        c.message = (f"Depends on a date given without a day ({dates}): {c.status} when completed "
                     f"as {earliest}, {other.status} as {latest}; send the full date.")
        c.status = "missing"
        first.missing_information.append(InformationRequest(
            ref=c.ref, what=f"the full date (year, month and day) of {dates}",
            where=", ".join(str(p["element"]) for p in partial), criterion=c.id))
    if changed:
        statuses = {c.status for c in first.criteria}
        outcome = ("denied" if "unmet" in statuses else
                   "pended" if "missing" in statuses else "approved")
        if outcome != "denied":
            first.notice = None
        first.outcome = outcome
        first.clinician_review_required = outcome == "denied"
    return first
