"""Step 5: the bibliographic records and evidence statements behind a determination.

A citation is resolved from the knowledge graph, then the deciding pack, then any pack (records
are shared); its certainty (`nr:recordCertainty`) says how far its details were verified.
Evidence statements are ordered by the letter section they belong to.
"""

from __future__ import annotations

from rdflib import URIRef
from rdflib.namespace import DCTERMS, RDFS

from ..kb import KnowledgeBase, PolicyPack, PolicyVersion
from ..model import Citation, EvidenceItem
from ..vocab import CITO, FABIO, NR, PRISM

#: the order of anything without a letter section: last
UNORDERED = 10_000


class Citations:
    """Citations and evidence items, cached: records do not change between cases."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self._cache: dict[tuple, Citation] = {}

    def citation(self, node, pack: PolicyPack | None = None) -> Citation:
        """The bibliographic record `node` (knowledge graph or packs)."""
        key = (node, pack.policy_id if pack else None)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._resolve(node, pack)
        return cached

    def _resolve(self, node, pack: PolicyPack | None) -> Citation:
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

    def evidence_sources(self, item, pack: PolicyPack) -> list:
        """The records an evidence statement cites (as evidence, as authority, its guideline)."""
        out = []
        for g in (self.kb.knowledge, pack.graph):
            for prop in (CITO.citesAsEvidence, NR.citation, CITO.citesAsAuthority):
                out.extend(g.objects(item, prop))
            guideline = g.value(item, NR.fromGuideline)
            if guideline is not None:
                out.append(guideline)
        return sorted(set(out))

    def section_order(self, section, pack: PolicyPack) -> int:
        """Where a letter section comes: top-level sections count in hundreds, their
        subsections in units."""
        if section is None:
            return UNORDERED
        for g in (pack.graph, self.kb.knowledge):
            order = g.value(section, NR.order)
            if order is not None:
                parent = g.value(section, NR.parentSection)
                if parent is None:
                    return int(order) * 100
                return self.section_order(parent, pack) + int(order)
        return UNORDERED

    def evidence(self, pack: PolicyPack, version: PolicyVersion) -> list[EvidenceItem]:
        """The evidence statements of the version and of its criteria, in letter order."""
        g = pack.graph
        kg = self.kb.knowledge
        items = set(g.objects(version.iri, NR.supportingEvidence))
        for criterion in version.criteria:
            items.update(g.objects(criterion, NR.supportingEvidence))
        out = []
        for item in items:
            text = None
            for graph in (kg, g):
                text = graph.value(item, NR.statementText) or graph.value(item, RDFS.label)
                if text is not None:
                    break
            section = kg.value(item, NR.letterSection) or g.value(item, NR.letterSection)
            order = kg.value(item, NR.order) or g.value(item, NR.order)
            note = kg.value(item, NR.certaintyNote)
            out.append(
                EvidenceItem(
                    iri=str(item),
                    text=str(text) if text is not None else str(item),
                    section=str(section) if section is not None else None,
                    order=int(order) if order is not None else 0,
                    citations=tuple(self.citation(s, pack)
                                    for s in self.evidence_sources(item, pack)),
                    certainty_note=str(note) if note is not None else None,
                )
            )
        out.sort(key=lambda e: (self.section_order(URIRef(e.section), pack) if e.section
                                else UNORDERED, e.order, e.iri))
        return out
