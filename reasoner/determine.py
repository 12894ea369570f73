"""Checking a case against a policy pack: build the per-case graph, infer, validate, trace.

Verdict rule (docs/architecture.md, "Criteria and condition shapes"; CONVENTIONS §5.1):
a criterion is not-applicable if a not-applicable condition holds, else unmet if an unmet
condition holds, else missing if a missing condition holds, else met. The outcome is denied if
any criterion is unmet, else pended if any is missing, else approved. A denial is only a
recommendation: `clinician_review_required` is set and the notice says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote
from datetime import date

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SH, SKOS
from rdflib.plugins.sparql import prepareQuery

from .case import Case
from .engines.shacl import PreparedQueryGraph, ShapesReport, ShapesRunner
from .errors import KnowledgeError
from .kb import KnowledgeBase, PolicyPack, PolicyVersion
from .kb import as_date
from .model import (
    Citation,
    ConditionHit,
    CriterionResult,
    Determination,
    EvidenceItem,
    Fact,
    InformationRequest,
    Passage,
    PolicyRef,
    reference_sort_key,
)
from .vocab import CITO, CODE_BASE, DETERMINATION_BASE, FABIO, NR, PRISM

_KIND_STATUS = {
    NR.NotApplicableCondition: "not-applicable",
    NR.UnmetCondition: "unmet",
    NR.MissingCondition: "missing",
}
_STATUS_RANK = ("not-applicable", "unmet", "missing")
_CERTAINTY_LABEL_CACHE: dict = {}


@dataclass
class CaseGraph:
    """The per-case graph pySHACL validates, and the part of it that rules inferred."""

    data: Graph
    inferred: Graph


def build_case_graph(kb: KnowledgeBase, case: Case) -> CaseGraph:
    """Case triples + type closure + knowledge about the concepts used + rule inferences."""
    data = PreparedQueryGraph()
    for triple in case.graph:
        data.add(triple)
    for subject, cls in case.graph.subject_objects(RDF.type):
        for sup in kb.superclasses(cls):
            data.add((subject, RDF.type, sup))
    for concept in {o for o in case.graph.objects() if isinstance(o, URIRef)}:
        if str(concept).startswith(CODE_BASE):
            for triple in kb.concept_description(concept):
                data.add(triple)
    for triple in kb.value_set_triples:
        data.add(triple)
    inferred = Graph()
    for path, rule in kb.rules:
        try:
            constructed = data.query(rule).graph
        except Exception as exc:  # a rule that fails on data is a knowledge-base bug
            raise KnowledgeError(f"rule failed: {exc}", source=str(path)) from None
        for triple in constructed:
            if triple not in data:
                data.add(triple)
                inferred.add(triple)
    return CaseGraph(data, inferred)


class Determiner:
    """Decides cases under the packs of one knowledge base; state is built once and reused."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self._runners: dict[str, ShapesRunner] = {}
        self._trace_queries: dict[str, object] = {}
        self._citations: dict[tuple, Citation] = {}

    def runner(self, pack: PolicyPack) -> ShapesRunner:
        runner = self._runners.get(pack.policy_id)
        if runner is None:
            runner = self._runners[pack.policy_id] = ShapesRunner(pack.graph)
        return runner

    def validate(self, case: Case, pack: PolicyPack) -> tuple[CaseGraph, ShapesReport]:
        case_graph = build_case_graph(self.kb, case)
        return case_graph, self.runner(pack).validate(case_graph.data)

    def determine(self, case: Case, policy_id: str, version: str | None = None) -> Determination:
        pack = self.kb.pack(policy_id)
        requested = as_date(case.graph.value(case.request, NR.requestedDate))
        policy_version = pack.version(version, on=requested)
        case_graph, report = self.validate(case, pack)
        return self._assemble(case, pack, policy_version, case_graph, report, requested)

    # ------------------------------------------------------------------ assembly

    def _assemble(self, case: Case, pack: PolicyPack, version: PolicyVersion, cg: CaseGraph,
                  report: ShapesReport, requested: date | None) -> Determination:
        shapes = pack.graph
        hits: dict[URIRef, list[ConditionHit]] = {}
        for result in report.results:
            if result.focus_node != case.request:
                continue
            criterion, kind = pack.condition_shapes.get(result.source_shape, (None, None))
            if criterion is None:
                continue
            hits.setdefault(criterion, []).append(
                ConditionHit(
                    shape=str(result.source_shape),
                    kind=_KIND_STATUS.get(kind, "unmet"),
                    message=result.message or str(shapes.value(result.source_shape, SH.message) or ""),
                    severity=str(result.severity).rsplit("#", 1)[-1],
                    value=str(result.value) if result.value is not None else None,
                )
            )
        criteria, requests = [], []
        for criterion in version.criteria:
            crit_hits = sorted(set(hits.get(criterion, [])), key=lambda h: (h.kind, h.shape, h.value or ""))
            status = "met"
            for rank in _STATUS_RANK:
                if any(h.kind == rank for h in crit_hits):
                    status = rank
                    break
            crit_hits = [h for h in crit_hits if h.kind == status]
            result = self._criterion_result(case, pack, criterion, status, crit_hits, cg)
            criteria.append(result)
            if status == "missing":
                for hit in crit_hits:
                    shape = URIRef(hit.shape)
                    requests.append(
                        InformationRequest(
                            ref=result.ref,
                            what=str(shapes.value(shape, NR.requestedInformation) or hit.message),
                            where=str(shapes.value(shape, NR.documentationLocation) or ""),
                            passage=result.passage.text if result.passage else None,
                            criterion=result.id,
                        )
                    )
        criteria.sort(key=lambda c: (c.section_order, reference_sort_key(c.ref)))
        statuses = {c.status for c in criteria}
        outcome = "denied" if "unmet" in statuses else "pended" if "missing" in statuses else "approved"
        notice = None
        if outcome == "denied":
            notice = self.kb.label_comment(NR.Denied)
        policy_ref = PolicyRef(
            id=pack.policy_id,
            version=version.version,
            iri=str(version.iri),
            title=pack.title,
            policy_iri=str(pack.policy_iri),
        )
        seen_requests, unique_requests = set(), []
        for r in requests:
            key = (r.ref, r.what)
            if key not in seen_requests:
                seen_requests.add(key)
                unique_requests.append(r)
        return Determination(
            case=str(case.node),
            case_id=case.id,
            policy=policy_ref,
            service=self._service(case, cg),
            outcome=outcome,
            clinician_review_required=outcome == "denied",
            criteria=criteria,
            missing_information=unique_requests,
            patient=self._patient(case, requested),
            diagnoses=self._diagnoses(case, cg),
            evidence=self._evidence(pack, version),
            unrecognised=self._unrecognised(case, cg),
            not_counted=self._not_counted(case, cg),
            iri=f"{DETERMINATION_BASE}{quote(case.id, safe='')}/{pack.policy_id}/"
                f"{quote(_local_name(version.iri), safe='')}",
            notice=notice,
        )

    def _criterion_result(self, case, pack, criterion, status, crit_hits, cg) -> CriterionResult:
        g = pack.graph
        ref = str(g.value(criterion, NR.referenceId) or criterion)
        passage_node = g.value(criterion, NR.encodesPassage)
        passage = None
        if passage_node is not None:
            cite = g.value(passage_node, NR.citation)
            passage = Passage(
                iri=str(passage_node),
                text=str(g.value(passage_node, NR.passageText) or ""),
                section=_str(g.value(passage_node, NR.section)),
                citation=self.citation(cite, pack) if cite is not None else None,
            )
        citations: dict[str, Citation] = {}
        for node in list(g.objects(criterion, NR.citation)) + (
            [g.value(passage_node, NR.citation)] if passage_node is not None else []
        ):
            if node is not None:
                c = self.citation(node, pack)
                citations[c.id] = c
        evidence = sorted(g.objects(criterion, NR.supportingEvidence))
        for item in evidence:
            for source in self._evidence_sources(item, pack):
                c = self.citation(source, pack)
                citations[c.id] = c
        facts = self._trace(case, pack, criterion, cg)
        for hit in crit_hits:
            if hit.value and hit.value != str(case.request) and URIRef(hit.value) in cg.data.subjects() and not any(
                f.iri == hit.value for f in facts
            ):
                facts.append(self.describe_fact(URIRef(hit.value), cg, pack))
        if status == "met" or not crit_hits:
            message = str(g.value(criterion, NR.message) or "")
        else:
            message = "; ".join(dict.fromkeys(h.message for h in crit_hits))
        section = g.value(criterion, NR.letterSection)
        return CriterionResult(
            id=str(criterion),
            ref=ref,
            label=str(g.value(criterion, RDFS.label) or ref),
            status=status,
            message=message,
            facts=sorted(facts, key=lambda f: (f.inferred, f.text, f.iri)),
            citations=sorted(citations.values(), key=lambda c: c.id),
            passage=passage,
            conditions=list(crit_hits),
            rationale=_str(g.value(criterion, NR.rationale)),
            section=str(section) if section is not None else None,
            section_order=self._order(section, pack),
            evidence=[str(e) for e in evidence],
        )

    def _trace(self, case: Case, pack: PolicyPack, criterion, cg: CaseGraph) -> list[Fact]:
        text = pack.graph.value(criterion, NR.traceQuery)
        if text is None:
            return []
        key = f"{pack.policy_id}\n{text}"
        query = self._trace_queries.get(key)
        if query is None:
            try:
                query = prepareQuery(pack.sparql_prefixes + "\n" + str(text))
            except Exception as exc:
                raise KnowledgeError(f"bad nr:traceQuery on <{criterion}>: {exc}",
                                     source=str(pack.folder)) from None
            self._trace_queries[key] = query
        facts: dict[str, Fact] = {}
        for row in cg.data.query(query, initBindings={"this": case.request}):
            fact = row.get("fact") if hasattr(row, "get") else row[0]
            if fact is None:
                continue
            inference = row.get("inference") if hasattr(row, "get") else None
            described = self.describe_fact(fact, cg, pack, inference)
            prior = facts.get(described.iri)
            if prior is None or (described.inferred and not prior.inferred):
                facts[described.iri] = described
        return list(facts.values())

    # ------------------------------------------------------------------ descriptions

    def describe_fact(self, node, cg: CaseGraph, pack: PolicyPack | None = None,
                      inference=None) -> Fact:
        data = cg.data
        if isinstance(node, Literal):
            return Fact(iri=str(node), text=str(node), source="", inferred=inference is not None)
        label = data.value(node, RDFS.label)
        if label is None and (node, RDF.type, SKOS.Concept) in data:
            label = self.kb.label(node, (data,))  # a coded value, e.g. a requested root
        text = str(label) if label is not None else self._generated_text(node, data)
        source_node = data.value(node, PROV.wasDerivedFrom)
        source = self._source_text(node, source_node, data)
        inference_label = None
        if inference is not None:
            inference_label = self.kb.label(inference, (data,) + ((pack.graph,) if pack else ())) or str(inference)
        return Fact(
            iri=str(node),
            text=text,
            source=source,
            inferred=inference is not None,
            source_iri=str(source_node) if source_node is not None else None,
            inference=inference_label,
        )

    def _generated_text(self, node, data: Graph) -> str:
        """A fact without a label: its class and the labels of what it codes, plus its date."""
        parts = []
        cls = next((c for c in data.objects(node, RDF.type) if self.kb.label(c)), None)
        if cls is not None:
            parts.append(self.kb.label(cls))
        for prop in (NR.code, NR.painCharacter, NR.nerveRoot, NR.segment, NR.zone, NR.laterality,
                     NR.presence, NR.result, NR.response, NR.severity):
            for value in sorted(data.objects(node, prop)):
                label = self.kb.label(value, (data,)) or _code_of(value)
                notation = data.value(value, SKOS.notation)
                if prop == NR.code and notation is not None and str(notation) not in label:
                    label = f"{label} ({notation})"
                parts.append(label)
        for prop in (NR.value, NR.percentPainRelief, NR.reliefDurationDays, NR.levelQuantity):
            for value in data.objects(node, prop):
                parts.append(f"{self.kb.label(prop) or prop}: {value}")
        dates = [data.value(node, p) for p in (NR.requestedDate, NR.effectiveDate, NR.onsetDate,
                                               NR.performedDate, NR.periodStart)]
        dates = [str(d) for d in dates if d is not None]
        end = data.value(node, NR.periodEnd)
        if dates:
            parts.append(dates[0] + (f" to {end}" if end is not None else ""))
        return ", ".join(parts) if parts else str(node)

    def _source_text(self, node, source_node, data: Graph) -> str:
        if source_node is None:
            return ""
        title = data.value(source_node, DCTERMS.title)
        when = data.value(source_node, DCTERMS.date)
        section = data.value(source_node, NR.section)
        element = data.value(node, NR.sourceElement)
        rtype = data.value(source_node, NR.resourceType)
        if title is None and rtype is not None:
            text = f"{rtype} {source_node}"
        else:
            text = str(title) if title is not None else str(source_node)
        if when is not None:
            text += f", {when}"
        if section is not None:
            text += f", {section}"
        if element is not None:
            text += f", {element}"
        return text

    def citation(self, node, pack: PolicyPack | None = None) -> Citation:
        """The bibliographic record `node` (knowledge graph or packs), cached: records do not
        change between cases."""
        key = (node, pack.policy_id if pack else None)
        cached = self._citations.get(key)
        if cached is None:
            cached = self._citations[key] = self._citation(node, pack)
        return cached

    def _citation(self, node, pack: PolicyPack | None) -> Citation:
        graphs = [self.kb.knowledge] + ([pack.graph] if pack else []) + [
            p.graph for p in self.kb.packs.values()]
        def val(prop):
            for g in graphs:
                v = g.value(node, prop)
                if v is not None:
                    return str(v)
            return None
        title = val(DCTERMS.title)
        text = val(DCTERMS.bibliographicCitation) or title or str(node)
        certainty = None
        for g in graphs:
            c = g.value(node, NR.recordCertainty)
            if c is not None:
                certainty = self.kb.label(c) or str(c)
                break
        return Citation(
            id=str(node),
            text=text,
            doi=val(PRISM.doi),
            pmid=val(FABIO.hasPubMedId),
            title=title,
            year=val(FABIO.hasPublicationYear),
            certainty=certainty,
            certainty_note=val(NR.certaintyNote),
        )

    def _evidence_sources(self, item, pack: PolicyPack) -> list:
        out = []
        for g in (self.kb.knowledge, pack.graph):
            for prop in (CITO.citesAsEvidence, NR.citation, CITO.citesAsAuthority):
                out.extend(g.objects(item, prop))
            guideline = g.value(item, NR.fromGuideline)
            if guideline is not None:
                out.append(guideline)
        return sorted(set(out))

    def _order(self, section, pack: PolicyPack) -> int:
        if section is None:
            return 10_000
        for g in (pack.graph, self.kb.knowledge):
            order = g.value(section, NR.order)
            if order is not None:
                # top-level sections count in hundreds, their subsections in units
                parent = g.value(section, NR.parentSection)
                if parent is None:
                    return int(order) * 100
                return self._order(parent, pack) + int(order)
        return 10_000

    def _evidence(self, pack: PolicyPack, version: PolicyVersion) -> list[EvidenceItem]:
        g = pack.graph
        items = set(g.objects(version.iri, NR.supportingEvidence))
        for criterion in version.criteria:
            items.update(g.objects(criterion, NR.supportingEvidence))
        out = []
        for item in items:
            text = None
            for graph in (self.kb.knowledge, g):
                text = graph.value(item, NR.statementText) or graph.value(item, RDFS.label)
                if text is not None:
                    break
            section = self.kb.knowledge.value(item, NR.letterSection) or g.value(item, NR.letterSection)
            order = self.kb.knowledge.value(item, NR.order) or g.value(item, NR.order)
            note = self.kb.knowledge.value(item, NR.certaintyNote)
            out.append(
                EvidenceItem(
                    iri=str(item),
                    text=str(text) if text is not None else str(item),
                    section=str(section) if section is not None else None,
                    order=int(order) if order is not None else 0,
                    citations=tuple(self.citation(s, pack) for s in self._evidence_sources(item, pack)),
                    certainty_note=str(note) if note is not None else None,
                )
            )
        out.sort(key=lambda e: (self._order(URIRef(e.section), pack) if e.section else 10_000,
                                e.order, e.iri))
        return out

    def _service(self, case: Case, cg: CaseGraph) -> dict:
        g, req = cg.data, case.request
        code = g.value(req, NR.code)
        roots = sorted(g.objects(req, NR.nerveRoot))
        side = g.value(req, NR.laterality)
        quantity = g.value(req, NR.levelQuantity)
        levels = g.value(req, NR.levelCount)  # inferred by the rules where the pack needs it
        if levels is None:
            levels = max(len(set(roots)), int(quantity) if quantity is not None else 0)
        return {
            "code": _notation(g, code),
            "label": _str(g.value(req, RDFS.label)),
            "levels": int(levels),
            "roots": [_short_label(g, r, self.kb) for r in roots],
            "laterality": (_short_label(g, side, self.kb) or "").lower() or None,
            "date": _str(g.value(req, NR.requestedDate)),
        }

    def _patient(self, case: Case, requested: date | None) -> dict:
        g = case.graph
        patient = g.value(case.node, NR.patient) or g.value(case.request, NR.subject)
        if patient is None:
            return {}
        born = as_date(g.value(patient, NR.birthDate))
        age = None
        if born and requested:
            age = requested.year - born.year - ((requested.month, requested.day) < (born.month, born.day))
        return {"iri": str(patient), "age": age, "gender": _str(g.value(patient, NR.administrativeGender))}

    def _diagnoses(self, case: Case, cg: CaseGraph) -> list[dict]:
        out = []
        for dx in sorted(cg.data.objects(case.request, NR.reasonDiagnosis)):
            code = cg.data.value(dx, NR.code)
            out.append({
                "iri": str(dx),
                "code": _notation(cg.data, code),
                "label": self.kb.label(code) if code is not None else None,
                "text": _str(cg.data.value(dx, RDFS.label)),
            })
        return out

    def _not_counted(self, case: Case, cg: CaseGraph) -> list[Fact]:
        """Record items the input contract treats as absent (e.g. a FHIR resource in a status
        that does not count, CONVENTIONS §1 rule 6), with the reason."""
        out = []
        for item in sorted(case.graph.objects(case.node, NR.hasNotCountedItem)):
            fact = self.describe_fact(item, cg)
            reason = case.graph.value(item, NR.reason)
            text = f"{fact.text}: {reason}" if reason is not None else fact.text
            out.append(Fact(iri=fact.iri, text=text, source=fact.source, source_iri=fact.source_iri))
        return out

    def _unrecognised(self, case: Case, cg: CaseGraph) -> list[Fact]:
        out = {}
        for item in case.graph.objects(case.node, NR.hasUnrecognisedItem):
            out[str(item)] = self.describe_fact(item, cg)
        for s, concept in case.graph.subject_objects(NR.code):
            if isinstance(concept, URIRef) and str(concept).startswith(CODE_BASE) and not self.kb.is_known_concept(concept):
                text = f"code {_code_of(concept)} is not recognised"
                out.setdefault(str(concept), Fact(iri=str(concept), text=text,
                                                  source=self._source_text(s, cg.data.value(s, PROV.wasDerivedFrom), cg.data)))
        return [out[k] for k in sorted(out)]


def _local_name(iri) -> str:
    """The last segment of an IRI (a version IRI names its version without spaces)."""
    return str(iri).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _str(value) -> str | None:
    return str(value) if value is not None else None


def _code_of(concept) -> str:
    return str(concept).rstrip("/").rsplit("/", 1)[-1]


def _notation(g: Graph, concept) -> str | None:
    if concept is None:
        return None
    notation = g.value(concept, SKOS.notation)
    return str(notation) if notation is not None else _code_of(concept)


def _short_label(g: Graph, concept, kb: KnowledgeBase) -> str | None:
    if concept is None:
        return None
    for graph in (g, kb.knowledge):
        alt = graph.value(concept, SKOS.altLabel)
        if alt is not None:
            return str(alt)
    return kb.label(concept, (g,)) or _notation(g, concept)

