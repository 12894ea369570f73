"""The one result model, shared by the API, the CLI, the server and every renderer.

A `Determination` is built by `reasoner.determine` and only read by renderers
(`reasoner.render.*`), which format and never decide. `to_dict()` is the stable JSON contract
of issue 2: keys may be added, the documented ones stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("met", "unmet", "missing", "not-applicable")


def reference_sort_key(ref: str | None) -> list:
    """Order reference ids naturally: ESI-CI-2 before ESI-CI-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", ref or "")]


OUTCOMES = ("approved", "denied", "pended")


@dataclass(frozen=True)
class Fact:
    """A case fact a verdict rests on, with where it was documented."""

    iri: str
    text: str
    source: str
    inferred: bool = False
    source_iri: str | None = None
    inference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"iri": self.iri, "text": self.text, "source": self.source, "inferred": self.inferred}
        if self.inference:
            out["inference"] = self.inference
        return out


@dataclass(frozen=True)
class Citation:
    """A bibliographic record cited for a criterion or statement."""

    id: str
    text: str
    doi: str | None = None
    pmid: str | None = None
    title: str | None = None
    year: str | None = None
    certainty: str | None = None
    certainty_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "text": self.text, "doi": self.doi, "pmid": self.pmid}
        if self.title:
            out["title"] = self.title
        if self.year:
            out["year"] = self.year
        if self.certainty:
            out["certainty"] = self.certainty
        if self.certainty_note:
            out["certainty_note"] = self.certainty_note
        return out


@dataclass(frozen=True)
class Passage:
    iri: str
    text: str
    section: str | None
    citation: Citation | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "iri": self.iri,
            "text": self.text,
            "section": self.section,
            "citation": self.citation.id if self.citation else None,
        }


@dataclass(frozen=True)
class ConditionHit:
    """A condition shape that held (a SHACL result), kept with its SHACL structure."""

    shape: str
    kind: str
    message: str
    severity: str
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "kind": self.kind, "message": self.message,
                "severity": self.severity, "value": self.value}


@dataclass(frozen=True)
class EvidenceItem:
    """An evidence statement or recommendation printed in a letter."""

    iri: str
    text: str
    section: str | None
    order: int
    citations: tuple[Citation, ...]
    certainty_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"iri": self.iri, "text": self.text, "section": self.section,
                "citations": [c.id for c in self.citations]}


@dataclass
class CriterionResult:
    id: str
    ref: str
    label: str
    status: str
    message: str
    facts: list[Fact] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    passage: Passage | None = None
    conditions: list[ConditionHit] = field(default_factory=list)
    rationale: str | None = None
    section: str | None = None
    section_order: int = 0
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "label": self.label,
            "status": self.status,
            "message": self.message,
            "facts": [f.to_dict() for f in self.facts],
            "citations": [c.to_dict() for c in self.citations],
            "passage": self.passage.to_dict() if self.passage else None,
            "conditions": [c.to_dict() for c in self.conditions],
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class InformationRequest:
    ref: str
    what: str
    where: str
    passage: str | None = None
    criterion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "what": self.what, "where": self.where, "passage": self.passage}


@dataclass
class PolicyRef:
    id: str
    version: str
    iri: str
    title: str
    policy_iri: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "iri": self.iri, "title": self.title}


@dataclass
class Determination:
    case: str
    case_id: str
    policy: PolicyRef
    service: dict[str, Any]
    outcome: str
    clinician_review_required: bool
    criteria: list[CriterionResult]
    missing_information: list[InformationRequest]
    patient: dict[str, Any] = field(default_factory=dict)
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[EvidenceItem] = field(default_factory=list)
    unrecognised: list[Fact] = field(default_factory=list)
    not_counted: list[Fact] = field(default_factory=list)
    iri: str = ""
    notice: str | None = None
    #: which policy version decided and why, e.g. "in force on the service date 2026-03-01"
    version_selection: str | None = None

    def criterion(self, ref: str) -> CriterionResult:
        for c in self.criteria:
            if c.ref == ref:
                return c
        raise KeyError(ref)

    def verdicts(self) -> dict[str, str]:
        return {c.ref: c.status for c in self.criteria}

    def to_dict(self) -> dict[str, Any]:
        return {
            "determination": self.iri,
            "case": self.case,
            "policy": self.policy.to_dict(),
            "version_selection": self.version_selection,
            "service": self.service,
            "patient": self.patient,
            "diagnoses": self.diagnoses,
            "outcome": self.outcome,
            "clinician_review_required": self.clinician_review_required,
            "notice": self.notice,
            "criteria": [c.to_dict() for c in self.criteria],
            "missing_information": [m.to_dict() for m in self.missing_information],
            "not_recognised": [f.to_dict() for f in self.unrecognised],
            "not_counted": [f.to_dict() for f in self.not_counted],
            "evidence": [e.to_dict() for e in self.evidence],
        }
