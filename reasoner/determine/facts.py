"""Step 4: the case facts a verdict rests on, and how each is described.

A criterion's `nr:traceQuery` (SPARQL `SELECT ?fact ?inference`, `$this` bound to the index
request) names the facts that decide it whatever its verdict; `?inference`, when bound, names
the value set, concept or relation reached by inference, and the fact is marked inferred
(docs/architecture.md, "Criteria and condition shapes"). Each fact is described by its label,
else by its class and what it codes, and by the source document it was derived from.
"""

from __future__ import annotations

from rdflib import Graph, Literal
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SKOS
from rdflib.plugins.sparql import prepareQuery

from ..case import Case
from ..errors import KnowledgeError
from ..kb import KnowledgeBase, PolicyPack
from ..model import Fact
from ..vocab import NR
from .case_graph import CaseGraph
from .text import code_of

#: properties whose values name what a fact codes, in the order a generated text lists them
_CODED = (NR.code, NR.painCharacter, NR.nerveRoot, NR.segment, NR.zone, NR.laterality,
          NR.presence, NR.result, NR.response, NR.severity)
_VALUED = (NR.value, NR.percentPainRelief, NR.reliefDurationDays, NR.levelQuantity)
_DATED = (NR.requestedDate, NR.effectiveDate, NR.onsetDate, NR.performedDate, NR.periodStart)


class FactTracer:
    """Runs trace queries (prepared once per pack and query) and describes facts."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self._queries: dict[str, object] = {}

    def trace(self, case: Case, pack: PolicyPack, criterion, cg: CaseGraph) -> list[Fact]:
        text = pack.graph.value(criterion, NR.traceQuery)
        if text is None:
            return []
        if cg.trace_rows is not None:  # the compiled engine ran the trace queries
            rows = cg.trace_rows.get(str(criterion), [])
        else:
            rows = [(row.get("fact"), row.get("inference"))
                    for row in cg.data.query(self.query(pack, criterion, text),
                                             initBindings={"this": case.request})]
        facts: dict[str, Fact] = {}
        known = cg.described  # a fact several criteria rest on is described once
        for fact, inference in rows:
            if fact is None:
                continue
            key = (fact, inference, id(pack))
            described = known.get(key)
            if described is None:
                described = known[key] = self.describe(fact, cg, pack, inference)
            prior = facts.get(described.iri)
            if prior is None or (described.inferred and not prior.inferred):
                facts[described.iri] = described
        return list(facts.values())

    def query(self, pack: PolicyPack, criterion, text):
        """The criterion's trace query, prepared once per pack and text."""
        key = f"{pack.policy_id}\n{text}"
        query = self._queries.get(key)
        if query is None:
            try:
                query = prepareQuery(pack.sparql_prefixes + "\n" + str(text))
            except Exception as exc:
                raise KnowledgeError(f"bad nr:traceQuery on <{criterion}>: {exc}",
                                     source=str(pack.folder)) from None
            self._queries[key] = query
        return query

    def describe(self, node, cg: CaseGraph, pack: PolicyPack | None = None,
                 inference=None) -> Fact:
        data = cg.data
        if isinstance(node, Literal):
            return Fact(iri=str(node), text=str(node), source="", inferred=inference is not None)
        label = data.value(node, RDFS.label)
        if label is None and (node, RDF.type, SKOS.Concept) in data:
            label = self.kb.label(node, (data,))  # a coded value, e.g. a requested root
        text = str(label) if label is not None else self.generated_text(node, data)
        source_node = data.value(node, PROV.wasDerivedFrom)
        source = source_text(node, source_node, data)
        inference_label = None
        if inference is not None:
            graphs = (data,) + ((pack.graph,) if pack else ())
            inference_label = self.kb.label(inference, graphs) or str(inference)
        return Fact(
            iri=str(node),
            text=text,
            source=source,
            inferred=inference is not None,
            source_iri=str(source_node) if source_node is not None else None,
            inference=inference_label,
        )

    def generated_text(self, node, data: Graph) -> str:
        """A fact without a label: its class and the labels of what it codes, plus its date."""
        parts = []
        cls = next((c for c in data.objects(node, RDF.type) if self.kb.label(c)), None)
        if cls is not None:
            parts.append(self.kb.label(cls))
        for prop in _CODED:
            for value in sorted(data.objects(node, prop)):
                label = self.kb.label(value, (data,)) or code_of(value)
                notation = data.value(value, SKOS.notation)
                if prop == NR.code and notation is not None and str(notation) not in label:
                    label = f"{label} ({notation})"
                parts.append(label)
        for prop in _VALUED:
            for value in data.objects(node, prop):
                parts.append(f"{self.kb.label(prop) or prop}: {value}")
        dates = [data.value(node, p) for p in _DATED]
        dates = [str(d) for d in dates if d is not None]
        end = data.value(node, NR.periodEnd)
        if dates:
            parts.append(dates[0] + (f" to {end}" if end is not None else ""))
        return ", ".join(parts) if parts else str(node)


def source_text(node, source_node, data: Graph) -> str:
    """Where a fact was documented: the document's title (or resource type and id), date,
    section and the element the fact came from."""
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
