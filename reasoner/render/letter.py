"""The determination as a letter in the shape of a reviewer's medical-necessity letter.

Shape (the reviewer's letter the project started from; docs/policies/clinical-snrb.md): a direct
recommendation; the clinical rationale grouped by theme; the evidence; expected outcomes;
risk-benefit; a numbered citation after each statement; a reference list in one citation style
(Vancouver, as used by the ICMJE and the NLM: authors, title, journal, year;volume(issue):pages,
then doi and PMID). A reference with an unverified detail carries a dagger and one legend line;
the verification notes themselves stay in the JSON and RDF. Record items the reasoner did not
count or did not recognise are summarised by kind (the full list is in the JSON), naming those of
a kind a missing criterion asks for. Every medical sentence comes from the knowledge graph: criteria
(`nr:rationale`, `nr:message`), case facts (their labels), evidence statements
(`nr:statementText`) and section headings (`nr:LetterSection` labels). This module only orders
and numbers them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..model import Citation, Determination, EvidenceItem, Fact


@dataclass
class _References:
    """Numbers each cited source in order of first citation."""

    order: list[str] = field(default_factory=list)
    entries: dict[str, str] = field(default_factory=dict)

    def cite(self, key: str, entry: str) -> int:
        if key not in self.entries:
            self.order.append(key)
            self.entries[key] = entry
        return self.order.index(key) + 1

    def marks(self, numbers) -> str:
        numbers = sorted(set(numbers))
        return f" [{', '.join(str(n) for n in numbers)}]" if numbers else ""


UNVERIFIED_MARK = "\u2020"  # dagger
UNVERIFIED_LEGEND = (f"{UNVERIFIED_MARK} A detail of this reference could not be verified; the "
                     "determination's JSON and RDF record which.")
LISTED_IN_FULL = 3  # up to this many record items are listed; more are summarised by kind
NAMED_ITEMS = 5  # distinct item descriptions named as bearing on a missing criterion


def _bibliographic(c: Citation) -> str:
    """One reference in Vancouver style: the record's composed citation (or its title and year),
    then doi and PMID; a dagger when any detail of the record is not verified."""
    text = " ".join(c.text.split()).rstrip(".")
    if text == " ".join((c.title or "").split()).rstrip(".") and c.year and c.year not in text:
        text += f". {c.year}"
    parts = [text + "."]
    if c.doi and c.doi not in text:
        parts.append(f"doi:{c.doi}.")
    if c.pmid and c.pmid not in text:
        parts.append(f"PMID: {c.pmid}.")
    if c.certainty and c.certainty.lower() != "verified":
        parts.append(UNVERIFIED_MARK)
    return " ".join(parts)


def _fact_refs(refs: _References, facts: list[Fact]) -> list[int]:
    numbers = []
    for fact in facts:
        if fact.source:
            key = fact.source_iri or fact.source
            numbers.append(refs.cite(key, f"Case record: {fact.source}"))
    return numbers


def _fact_phrase(fact: Fact) -> str:
    if fact.inferred and fact.inference:
        return f"{fact.text} (inferred: {fact.inference})"
    return fact.text


def render_letter(d: Determination, sections: dict[str, tuple[str, int, str | None]]) -> str:
    """`sections` maps a letter-section IRI to (label, order, parent IRI)."""
    refs = _References()
    lines: list[str] = []
    service = d.service
    code = f"CPT {service.get('code')}"
    what = service.get("label") or code
    lines.append(f"Medical Necessity Determination: {what}" + ("" if code in what else f" ({code})"))
    lines.append(f"Policy: {d.policy.title}, version {d.policy.version}")
    lines.append("")
    lines.append("Direct Recommendation")
    lines.append(_recommendation(d, refs))
    if d.notice:
        lines.append(f"Notice: {d.notice}")
    lines.append("")

    by_section: dict[str | None, list[str]] = {}
    for c in d.criteria:
        if c.status == "not-applicable":
            continue
        by_section.setdefault(c.section, []).append(_criterion_line(c, refs))
    for item in d.evidence:
        by_section.setdefault(item.section, []).append(_evidence_line(item, refs))

    printed_parents: set[str] = set()
    def order_of(iri):
        label, order, parent = sections.get(iri, (iri, 10_000, None))
        return (order_of(parent)[0] + order if parent else order * 100, label)
    for iri in sorted((k for k in by_section if k is not None), key=order_of):
        label, _, parent = sections.get(iri, (iri, 0, None))
        if parent and parent not in printed_parents:
            printed_parents.add(parent)
            lines.append(sections.get(parent, (parent, 0, None))[0])
        lines.append(label)
        lines.extend(by_section[iri])
    if None in by_section:
        lines.append("Other criteria")
        lines.extend(by_section[None])

    if d.missing_information:
        lines.append("")
        lines.append("Information Needed")
        for req in d.missing_information:
            where = f" Where: {req.where.rstrip('. ')}." if req.where else ""
            lines.append(f"- {req.ref}: {req.what.rstrip('. ')}.{where}")
    not_applicable = [c for c in d.criteria if c.status == "not-applicable"]
    if not_applicable:
        lines.append("")
        lines.append("Not applicable to this request: " + ", ".join(c.ref for c in not_applicable))
    items = _record_items(d)
    if items:
        lines.append("")
        lines.extend(items)
    lines.append("")
    lines.append("References")
    for i, key in enumerate(refs.order, 1):
        lines.append(f"{i}. {refs.entries[key]}")
    if any(entry.endswith(UNVERIFIED_MARK) for entry in refs.entries.values()):
        lines.append(UNVERIFIED_LEGEND)
    return "\n".join(lines) + "\n"


def _kind(item: Fact) -> str:
    """The kind of a record item: its FHIR resource type (the first word of its source), or
    'code' for a code the knowledge graph does not know."""
    if item.text.startswith("code "):
        return "code"
    head = (item.source or "").split(" ", 1)[0].rstrip(",")
    return head if head.isalpha() and head[:1].isupper() else "other"


def _record_items(d: Determination) -> list[str]:
    """Items kept but not used to decide: listed when few; otherwise counted by kind, naming the
    items of a kind that a missing criterion's documentation request asks for (a not-counted
    CarePlan matters when the care plan is missing). Issue 8, point 9."""
    groups = [("not counted (status or date outside the input contract)", "not counted", d.not_counted),
              ("not recognised (kept, not used to decide)", "not recognised", d.unrecognised)]
    groups = [(title, short, items) for title, short, items in groups if items]
    total = sum(len(items) for _, _, items in groups)
    if not total:
        return []
    lines = []
    if total <= LISTED_IN_FULL:
        for title, _, items in groups:
            lines.append(f"{title[0].upper()}{title[1:]}: " + "; ".join(f.text for f in items))
        return lines
    for title, _, items in groups:
        kinds = Counter(_kind(f) for f in items)
        counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kn: (-kn[1], kn[0])))
        lines.append(f"Record items {title}: {len(items)} ({counts}).")
    bearing: dict[str, list] = {}  # item text -> [criteria refs, number of items]
    for req in d.missing_information:
        words = set(re.findall(r"[A-Za-z]+", req.where or ""))
        for _, _, items in groups:
            for f in items:
                if _kind(f) in words:
                    entry = bearing.setdefault(f.text, [[], set()])
                    if req.ref not in entry[0]:
                        entry[0].append(req.ref)
                    entry[1].add(f.iri)
    for text, (criteria, iris) in list(bearing.items())[:NAMED_ITEMS]:
        count = f" ({len(iris)} items)" if len(iris) > 1 else ""
        lines.append(f"- Bearing on {', '.join(criteria)}: {text.rstrip('. ')}{count}.")
    if len(bearing) > NAMED_ITEMS:
        lines.append(f"- And {len(bearing) - NAMED_ITEMS} more kinds of item bearing on a missing criterion.")
    lines.append("The full list is in the determination's JSON.")
    return lines


def _recommendation(d: Determination, refs: _References) -> str:
    s = d.service
    roots = ", ".join(s.get("roots") or [])
    side = s.get("laterality") or ""
    who = []
    if d.patient.get("age") is not None:
        who.append(f"{d.patient['age']}-year-old patient")
    else:
        who.append("patient")
    dx = "; ".join(
        f"{x.get('label') or x.get('text') or ''} ({x.get('code')})".strip() for x in d.diagnoses
    )
    subject = f"{side} {roots}".strip()
    head = (f"The {subject} request for CPT {s.get('code')} on {s.get('date')} for this "
            f"{' '.join(who)}" + (f" with {dx}" if dx else "") + f" is {d.outcome.upper()} under "
            f"{d.policy.title} (version {d.policy.version}).")
    decisive = [c for c in d.criteria if c.status == ("unmet" if d.outcome == "denied" else "missing")]
    if d.outcome == "approved":
        met = [c for c in d.criteria if c.status == "met"]
        return head + f" All {len(met)} applicable criteria are met."
    reasons = "; ".join(f"{c.ref} {c.status}: {c.message.rstrip('. ')}" for c in decisive)
    return head + f" Decisive: {reasons}."


def _criterion_line(c, refs: _References) -> str:
    numbers = _fact_refs(refs, c.facts)
    policy_cites = [refs.cite(x.id, _bibliographic(x)) for x in c.citations if x.id == (c.passage.citation.id if c.passage and c.passage.citation else None)]
    facts = "; ".join(_fact_phrase(f) for f in c.facts)
    if c.status == "met":
        text = (c.rationale or c.message).rstrip(". ")
        body = f"- {text}" + (f": {facts}" if facts else "") + "."
    elif c.status == "unmet":
        body = f"- {c.label} ({c.ref}) not met: {c.message.rstrip('. ')}" + (f". Record: {facts}" if facts else "") + "."
    else:
        body = (f"- {c.label} ({c.ref}) documentation missing: {c.message.rstrip('. ')}"
                + (f". Record: {facts}" if facts else "") + ".")
    return body + refs.marks(numbers + policy_cites)


def _evidence_line(item: EvidenceItem, refs: _References) -> str:
    numbers = [refs.cite(c.id, _bibliographic(c)) for c in item.citations]
    return f"- {item.text}" + refs.marks(numbers)
