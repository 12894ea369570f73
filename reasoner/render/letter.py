"""The determination as a letter in the shape of a reviewer's medical-necessity letter.

Shape (reference/seed-determination.txt): a direct recommendation; the clinical rationale grouped
by theme; the evidence; expected outcomes; risk-benefit; a numbered citation after each
statement; a reference list. Every medical sentence comes from the knowledge graph: criteria
(`nr:rationale`, `nr:message`), case facts (their labels), evidence statements
(`nr:statementText`) and section headings (`nr:LetterSection` labels). This module only orders
and numbers them.
"""

from __future__ import annotations

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


def _bibliographic(c: Citation) -> str:
    text = c.text
    if c.doi and c.doi not in text:
        text += f" doi:{c.doi}"
    if c.pmid and c.pmid not in text:
        text += f" PMID {c.pmid}"
    if c.certainty and c.certainty.lower() != "verified":
        text += f" (record {c.certainty}" + (f": {c.certainty_note}" if c.certainty_note else "") + ")"
    return text


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
    if d.unrecognised:
        lines.append("")
        lines.append("Not recognised (kept, not used to decide): "
                     + "; ".join(f.text for f in d.unrecognised))
    if d.not_counted:
        lines.append("")
        lines.append("Not counted (status or date outside the input contract): "
                     + "; ".join(f.text for f in d.not_counted))
    lines.append("")
    lines.append("References")
    for i, key in enumerate(refs.order, 1):
        lines.append(f"{i}. {refs.entries[key]}")
    return "\n".join(lines) + "\n"


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
