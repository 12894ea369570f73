"""FHIR R4 intake: a request Bundle → the case model (the project FHIR conventions, sections 1-4).

The entry point; the work is done by `envelope` (wrappers), `checks` (§1), `tables`
(the mapping table and value sets), `elements` (JSON element paths) and `mapper`.

    map_bundle(data, source, kb=None) -> rdflib.Graph

1. **Envelopes** are flattened to one record (README.md, "Envelopes"): record Bundles
   (collection, transaction, batch, searchset, document), one resource, Parameters, Da Vinci
   PAS request Bundles (`pas`), CDS Hooks requests (`cdshooks`), NDJSON; inquiries,
   responses, STU3/DSTU2, XML and input over the limits are refused in one line.
2. **Structure** is checked by `reasoner.engines.fhir` (fhir.resources R4B models).
3. **Envelope** (§1): one index request, one Patient, references resolve, dates are
   calendar dates or partial dates (`dates`). Any failure raises `InputError` with one line
   naming the file, the entry (index and fullUrl) and the element.
4. **Mapping**: the declarative table `fhir-mapping.json` (format: `README.md` beside this
   file) says which resource type / category / code list gives which class and which element
   gives which property. Code lists come from the knowledge graph's value sets
   (`vs:<name>`), falling back to the table's copies only when the graph lacks them.
   Resources outside the "counts when" states of §1 rule 6 become `nr:NotCountedItem`s with
   the reason; well-formed resources with codes the conventions do not know become
   `nr:UnrecognisedItem`s. Every node carries `prov:wasDerivedFrom` the entry (an
   `nr:FhirResource` named by its fullUrl) and `nr:sourceElement`.

The mapper decides nothing about criteria: dates after D, windows and concordance are the
shapes' business (§5), so Turtle and FHIR cases meet the same rules.
"""

from __future__ import annotations

from rdflib import Graph
from rdflib.namespace import PROV, RDF

from ..vocab import NR
from .checks import check_envelope, parse_date
from .elements import codings, select
from .envelope import Entry, Flattened, flatten
from .mapper import _Mapper
from .normalize import normalize
from .tables import Context, ValueSet, context_for, load_table

__all__ = ["Context", "Entry", "Flattened", "ValueSet", "check_envelope", "codings", "context_for",
           "flatten", "load_table", "map_bundle", "parse_date", "select", "summary"]


def map_bundle(data: dict, source: str, kb: Graph | None = None) -> Graph:
    """Map a FHIR R4 request (collection Bundle, CDS Hooks request or PAS Bundle) to a case graph.

    `data` is the parsed JSON; `source` names the file in messages and picks the case id
    (file stem; `bundle.json` is named by its folder); `kb` is the knowledge graph (concept
    schemes, value sets, unit factors), default the project's knowledge/ folder.
    Raises `InputError` (exit 2) with one line naming the file, entry and element."""
    ctx = context_for(kb)
    flat = normalize(flatten(data, source, ctx), ctx)
    patient, index, refs = check_envelope(flat, ctx, source)
    mapper = _Mapper(flat, ctx, source, patient, index, refs)
    mapper.plan()
    return mapper.run()


def summary(graph: Graph) -> dict[str, list[dict[str, str]]]:
    """The unrecognised and not-counted items of a mapped case, for reports and tests."""
    out: dict[str, list[dict[str, str]]] = {"unrecognised": [], "not_counted": []}
    for key, cls in (("unrecognised", NR.UnrecognisedItem), ("not_counted", NR.NotCountedItem)):
        for node in sorted(graph.subjects(RDF.type, cls)):
            out[key].append({
                "iri": str(node),
                "text": str(graph.value(node, NR.text) or ""),
                "reason": str(graph.value(node, NR.reason) or ""),
                "source": str(graph.value(node, PROV.wasDerivedFrom) or ""),
                "element": str(graph.value(node, NR.sourceElement) or ""),
            })
    return out
