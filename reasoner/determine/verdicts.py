"""Step 3: from SHACL results to verdicts and an outcome (docs/architecture.md, "Criteria and
condition shapes").

Each SHACL result on the index request is a condition that held; its shape names its criterion
(`nr:conditionOf`) and its kind (`nr:conditionKind`). A criterion's verdict is the first kind in
the precedence not-applicable > unmet > missing that held, else met; only the hits of that kind
are kept, since they are the ones that decided. The outcome: denied if any criterion is unmet,
else pended if any is missing, else approved.
"""

from __future__ import annotations

from rdflib import URIRef
from rdflib.namespace import SH

from ..engines.shacl import ShapesReport
from ..kb import PolicyPack
from ..model import ConditionHit, CriterionResult, InformationRequest, reference_sort_key
from ..vocab import NR

KIND_STATUS = {
    NR.NotApplicableCondition: "not-applicable",
    NR.UnmetCondition: "unmet",
    NR.MissingCondition: "missing",
}
#: verdict precedence: the first kind that held decides
STATUS_RANK = ("not-applicable", "unmet", "missing")


def condition_hits(report: ShapesReport, request, pack: PolicyPack) -> dict[URIRef, list[ConditionHit]]:
    """The conditions that held on the index request, grouped by criterion."""
    shapes = pack.graph
    hits: dict[URIRef, list[ConditionHit]] = {}
    for result in report.results:
        if result.focus_node != request:
            continue
        criterion, kind = pack.condition_shapes.get(result.source_shape, (None, None))
        if criterion is None:
            continue
        hits.setdefault(criterion, []).append(
            ConditionHit(
                shape=str(result.source_shape),
                kind=KIND_STATUS.get(kind, "unmet"),
                message=result.message or str(shapes.value(result.source_shape, SH.message) or ""),
                severity=str(result.severity).rsplit("#", 1)[-1],
                value=str(result.value) if result.value is not None else None,
            )
        )
    return hits


def verdict(hits: list[ConditionHit]) -> tuple[str, list[ConditionHit]]:
    """The criterion's verdict and the hits that decided it (those of the winning kind)."""
    ordered = sorted(set(hits), key=lambda h: (h.kind, h.shape, h.value or ""))
    status = "met"
    for rank in STATUS_RANK:
        if any(h.kind == rank for h in ordered):
            status = rank
            break
    return status, [h for h in ordered if h.kind == status]


def information_requests(result: CriterionResult, hits: list[ConditionHit],
                         pack: PolicyPack) -> list[InformationRequest]:
    """What a missing criterion asks for, and where it is usually documented."""
    shapes = pack.graph
    out = []
    for hit in hits:
        shape = URIRef(hit.shape)
        out.append(
            InformationRequest(
                ref=result.ref,
                what=str(shapes.value(shape, NR.requestedInformation) or hit.message),
                where=str(shapes.value(shape, NR.documentationLocation) or ""),
                passage=result.passage.text if result.passage else None,
                criterion=result.id,
            )
        )
    return out


def unique_requests(requests: list[InformationRequest]) -> list[InformationRequest]:
    """One request per (criterion, what), in first-seen order."""
    seen, out = set(), []
    for r in requests:
        key = (r.ref, r.what)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def outcome(criteria: list[CriterionResult]) -> str:
    statuses = {c.status for c in criteria}
    return "denied" if "unmet" in statuses else "pended" if "missing" in statuses else "approved"


def precedence_notes(report: ShapesReport, request, pack: PolicyPack) -> list[str]:
    """For a raw SHACL report (`reasoner validate`): one line per criterion for which
    conditions of more than one kind held, saying which kind decides its verdict and why, so
    that a reader does not see one criterion with two verdicts unexplained."""
    out = []
    for criterion, hits in condition_hits(report, request, pack).items():
        kinds = sorted({h.kind for h in hits}, key=lambda k: STATUS_RANK.index(k)
                       if k in STATUS_RANK else len(STATUS_RANK))
        if len(kinds) < 2:
            continue
        status, _ = verdict(hits)
        ref = str(pack.graph.value(criterion, NR.referenceId) or criterion)
        others = " and ".join(k for k in kinds if k != status)
        out.append(f"{ref}: {' and '.join(kinds)} conditions held; the verdict is {status}, "
                   f"because {status} takes precedence over {others} "
                   f"(order: {' > '.join(STATUS_RANK)}); the {others} result(s) do not count")
    return sorted(out, key=lambda line: reference_sort_key(line.split(":", 1)[0]))
