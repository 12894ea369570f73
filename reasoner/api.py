"""The API callers use (the CLI, the server, tests, notebooks): load once, decide many.

    from reasoner.api import Reasoner
    r = Reasoner.load()
    case = r.load_case("cases/seed-l5-snrb/case.ttl")
    d = r.determine(case, "clinical-snrb")
    print(d.outcome, d.verdicts())
"""

from __future__ import annotations

from pathlib import Path

from rdflib import Graph

from .case import Case, load_case
from .determine import Determiner, build_case_graph
from .engines.shacl import ShapesReport
from .errors import InputError
from .kb import KnowledgeBase
from .model import Determination


class Reasoner:
    """A loaded knowledge base and the state reused across cases."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.determiner = Determiner(kb)

    @classmethod
    def load(cls, root: str | Path | None = None) -> "Reasoner":
        return cls(KnowledgeBase(Path(root) if root else None))

    def policies(self) -> list[dict]:
        out = []
        for pack in self.kb.packs.values():
            for v in sorted(pack.versions, key=lambda v: (v.effective_from or v.version, v.version)):
                out.append({
                    "id": pack.policy_id,
                    "title": pack.title,
                    "version": v.version,
                    "iri": str(v.iri),
                    "effective_from": v.effective_from.isoformat() if v.effective_from else None,
                    "effective_until": v.effective_until.isoformat() if v.effective_until else None,
                    "criteria": len(v.criteria),
                })
        return out

    def load_case(self, path: str | Path) -> Case:
        return load_case(path, self.kb.knowledge)

    def determine(self, case: Case | str | Path, policy_id: str,
                  version: str | None = None) -> Determination:
        if not isinstance(case, Case):
            case = self.load_case(case)
        from .intake import dates  # partial dates: both completions decided and merged

        return dates.determine(self.determiner, case, policy_id, version)

    def record_graph(self, determination: Determination, case: Case) -> Graph:
        """A self-contained decision record: the determination (PROV-O), the case facts, and
        the content hash of every ontology, knowledge, rule and shape file used."""
        from .render.rdf import determination_graph

        return determination_graph(determination, case.graph, self.kb.file_hashes)

    def letter(self, determination: Determination) -> str:
        """The determination as a letter; headings come from the nr:LetterSection nodes."""
        from .render.letter import render_letter

        return render_letter(determination, self.letter_sections(determination.policy.id))

    def letter_sections(self, policy_id: str) -> dict[str, tuple[str, int, str | None]]:
        from rdflib.namespace import RDF, RDFS

        from .vocab import NR

        out = {}
        for g in (self.kb.knowledge, self.kb.pack(policy_id).graph):
            for s in g.subjects(RDF.type, NR.LetterSection):
                parent = g.value(s, NR.parentSection)
                out[str(s)] = (str(g.value(s, RDFS.label) or s), int(g.value(s, NR.order) or 0),
                               str(parent) if parent is not None else None)
        return out

    def validate(self, case: Case | str | Path, policy_id: str) -> ShapesReport:
        if not isinstance(case, Case):
            case = self.load_case(case)
        _, report = self.determiner.validate(case, self.kb.pack(policy_id))
        return report

    def query_graph(self, case: Case | None = None) -> Graph:
        """Ontology + knowledge + every pack (+ the case with its inferences) as one graph."""
        graph = Graph()
        for g in (self.kb.ontology, self.kb.knowledge, *[p.graph for p in self.kb.packs.values()]):
            graph += g
        if case is not None:
            graph += build_case_graph(self.kb, case).data
        for prefix, ns in self.kb.knowledge.namespaces():
            graph.bind(prefix, ns, override=False)
        return graph

    def query(self, sparql: str, case: Case | None = None, source: str = "query"):
        """Run SPARQL over ontology + knowledge (+ case); a bad query is an InputError."""
        from rdflib.plugins.sparql import prepareQuery

        from .vocab import PREFIXES

        try:
            prepared = prepareQuery(sparql, initNs=PREFIXES)
        except Exception as exc:
            raise InputError(f"bad SPARQL: {_parse_error(exc)}", source=source,
                             place=_parse_place(exc, sparql)) from None
        return self.query_graph(case).query(prepared)


def _parse_error(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def _parse_place(exc: Exception, text: str) -> str | None:
    loc = getattr(exc, "loc", None)
    if isinstance(loc, int):
        line = text.count("\n", 0, loc) + 1
        col = loc - (text.rfind("\n", 0, loc) + 1) + 1
        return f"line {line} column {col}"
    return None
