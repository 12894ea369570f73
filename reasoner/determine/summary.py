"""Step 6: what a determination says about the request and the record besides the verdicts:
the service requested, the patient, the reason diagnoses, and the record items that were not
recognised (unknown codes) or not counted (e.g. a resource in a status that does not count)."""

from __future__ import annotations

from datetime import date

from rdflib import URIRef
from rdflib.namespace import PROV, RDFS

from ..case import Case
from ..kb import KnowledgeBase, as_date
from ..model import Fact
from ..vocab import CODE_BASE, NR
from .case_graph import CaseGraph
from .facts import FactTracer, source_text
from .text import code_of, notation, short_label, str_or_none


def service(kb: KnowledgeBase, case: Case, cg: CaseGraph) -> dict:
    """The service requested: code, label, levels, roots, side and date."""
    g, req = cg.data, case.request
    code = g.value(req, NR.code)
    roots = sorted(g.objects(req, NR.nerveRoot))
    side = g.value(req, NR.laterality)
    quantity = g.value(req, NR.levelQuantity)
    levels = g.value(req, NR.levelCount)  # inferred by the rules where the pack needs it
    if levels is None:
        levels = max(len(set(roots)), int(quantity) if quantity is not None else 0)
    return {
        "code": notation(g, code),
        "label": str_or_none(g.value(req, RDFS.label)),
        "levels": int(levels),
        "roots": [short_label(g, r, kb) for r in roots],
        "laterality": (short_label(g, side, kb) or "").lower() or None,
        "date": str_or_none(g.value(req, NR.requestedDate)),
    }


def patient(case: Case, requested: date | None) -> dict:
    """The patient: IRI, age on the service date, administrative gender."""
    g = case.graph
    node = g.value(case.node, NR.patient) or g.value(case.request, NR.subject)
    if node is None:
        return {}
    born = as_date(g.value(node, NR.birthDate))
    age = None
    if born and requested:
        age = requested.year - born.year - ((requested.month, requested.day) < (born.month, born.day))
    return {"iri": str(node), "age": age, "gender": str_or_none(g.value(node, NR.administrativeGender))}


def diagnoses(kb: KnowledgeBase, case: Case, cg: CaseGraph) -> list[dict]:
    """The request's reason diagnoses with their codes and labels."""
    out = []
    for dx in sorted(cg.data.objects(case.request, NR.reasonDiagnosis)):
        code = cg.data.value(dx, NR.code)
        out.append({
            "iri": str(dx),
            "code": notation(cg.data, code),
            "label": kb.label(code) if code is not None else None,
            "text": str_or_none(cg.data.value(dx, RDFS.label)),
        })
    return out


def not_counted(tracer: FactTracer, case: Case, cg: CaseGraph) -> list[Fact]:
    """Record items the input contract treats as absent (e.g. a FHIR resource in a status
    that does not count; docs/architecture.md), with the reason."""
    out = []
    for item in sorted(case.graph.objects(case.node, NR.hasNotCountedItem)):
        fact = tracer.describe(item, cg)
        reason = case.graph.value(item, NR.reason)
        text = f"{fact.text}: {reason}" if reason is not None else fact.text
        out.append(Fact(iri=fact.iri, text=text, source=fact.source, source_iri=fact.source_iri))
    return out


def unrecognised(tracer: FactTracer, case: Case, cg: CaseGraph) -> list[Fact]:
    """Items the intake did not recognise, and codes the knowledge graph does not know."""
    kb = tracer.kb
    out = {}
    for item in case.graph.objects(case.node, NR.hasUnrecognisedItem):
        out[str(item)] = tracer.describe(item, cg)
    for s, concept in case.graph.subject_objects(NR.code):
        if (isinstance(concept, URIRef) and str(concept).startswith(CODE_BASE)
                and not kb.is_known_concept(concept)):
            text = f"code {code_of(concept)} is not recognised"
            source = source_text(s, cg.data.value(s, PROV.wasDerivedFrom), cg.data)
            out.setdefault(str(concept), Fact(iri=str(concept), text=text, source=source))
    return [out[k] for k in sorted(out)]
