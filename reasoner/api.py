"""The API callers use (the CLI, the server, tests, notebooks): load once, decide many.

    from reasoner.api import Reasoner
    r = Reasoner.load()
    case = r.load_case("cases/seed-l5-snrb/case.ttl")
    d = r.determine(case, "clinical-snrb")
    print(d.outcome, d.verdicts())
"""

from __future__ import annotations

import re
from pathlib import Path

from rdflib import Graph
from rdflib.namespace import SKOS

from .case import Case, load_case
from .determine import Determiner, build_case_graph
from .determine.determiner import default_engine
from .engines.shacl import ShapesReport
from .errors import InputError
from .kb import KnowledgeBase
from .model import Determination
from .vocab import NR


class Reasoner:
    """A loaded knowledge base and the state reused across cases."""

    def __init__(self, kb: KnowledgeBase, engine: str | None = None):
        self.kb = kb
        self.determiner = Determiner(kb, engine or default_engine())

    @classmethod
    def load(cls, root: str | Path | None = None, engine: str | None = None) -> "Reasoner":
        """`engine`: "compiled" or "pyshacl" (`reasoner/determine/determiner.py`); default the
        environment's NECESSITY_ENGINE, else "compiled"."""
        return cls(KnowledgeBase(Path(root) if root else None), engine)

    @property
    def engine(self) -> str:
        return self.determiner.engine

    def engines(self) -> dict[str, tuple[str, str | None]]:
        """policy id -> (the engine that decides under it, why pySHACL if it is pySHACL)."""
        out = {}
        for pid, pack in sorted(self.kb.packs.items()):
            program = self.determiner.program(pack)
            out[pid] = (self.determiner.engine_for(pack), program.fallback)
        return out

    def policies(self) -> list[dict]:
        """One row per pack version: id, title, version, period, criteria, the service codes
        the pack covers (what routing by service code matches) and whether it is an example
        pack that decides only when named."""
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
                    "services": sorted(self.kb.code_text(s) for s in pack.services),
                    "illustrative_only": pack.illustrative_only,
                })
        return out

    def load_case(self, path: str | Path) -> Case:
        return load_case(path, self.kb.knowledge)

    def determine(self, case: Case | str | Path, policy_id: str,
                  version: str | None = None) -> Determination:
        if not isinstance(case, Case):
            case = self.load_case(case)
        self._check_policy_covers(case, policy_id)
        from .intake import dates  # partial dates: both completions decided and merged

        return dates.determine(self.determiner, case, policy_id, version)

    def covering_policies(self, case: Case | str | Path) -> list[str]:
        """The ids (sorted) of the packs that decide the index request's service: those whose
        `nr:appliesToService` is the request's code (`nr:code` of the `nr:indexRequest`) or one
        of its broader concepts. Example packs (`nr:illustrativeOnly true`) are skipped: they
        decide only when named. None covering it is an InputError naming the code and system."""
        if not isinstance(case, Case):
            case = self.load_case(case)
        code = case.graph.value(case.request, NR.code)
        if code is None:
            raise InputError("the index request has no service code, so no policy can be "
                             "chosen by it; name the policy", source=case.source)
        out = sorted(p.policy_id for p in self.kb.packs.values()
                     if not p.illustrative_only and p.services & self._service_codes(code))
        if not out:
            raise InputError(f"no policy covers the requested service: code "
                             f"{self.kb.code_text(code)}", source=case.source)
        return out

    def _service_codes(self, code) -> set:
        """The request's service code and its broader concepts (a pack may cover a family)."""
        return {code} | set(self.kb.knowledge.transitive_objects(code, SKOS.broader))

    def _check_policy_covers(self, case: Case, policy_id: str) -> None:
        """A policy named for a request of another service is bad input, not a denial: its
        criteria were written for the services of its `nr:appliesToService`. A request with no
        service code is left to the criteria (they report what is missing)."""
        code = case.graph.value(case.request, NR.code)
        pack = self.kb.pack(policy_id)
        if code is None or not pack.services or pack.services & self._service_codes(code):
            return
        others = sorted(p.policy_id for p in self.kb.packs.values()
                        if not p.illustrative_only and p.services & self._service_codes(code))
        tail = (f"; policies covering it: {', '.join(others)}" if others
                else "; no policy covers it")
        raise InputError(f"policy {policy_id} does not cover the requested service: code "
                         f"{self.kb.code_text(code)}{tail}", source=case.source)

    def determine_all(self, case: Case | str | Path, policy_id: str | None = None,
                      version: str | None = None) -> list[Determination]:
        """Decide under the policy named, or else under every policy that covers the request's
        service (`covering_policies`), in policy-id order."""
        if not isinstance(case, Case):
            case = self.load_case(case)
        if policy_id:
            return [self.determine(case, policy_id, version)]
        if version:
            raise InputError("a policy version needs the policy it belongs to")
        return [self.determine(case, pid) for pid in self.covering_policies(case)]

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
        _, report = self.determiner.validate(case, self.kb.pack(policy_id), report_graph=True)
        return report

    def precedence_notes(self, case: Case, policy_id: str, report: ShapesReport) -> list[str]:
        """Why a criterion shown with conditions of two kinds in `report` has the verdict it
        has (determine/verdicts.py, `precedence_notes`)."""
        from .determine.verdicts import precedence_notes

        return precedence_notes(report, case.request, self.kb.pack(policy_id))

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
    """The parser's message without the position it appends ("(at char 18), (line:1,
    col:19)"): the error line names the place once, as line and column."""
    text = " ".join(str(exc).split())
    text = re.sub(r"\s*\(at char \d+\),?\s*\(line:\d+, col:\d+\)\s*$", "", text)
    text = re.sub(r"\s*\(at char \d+\)\s*$", "", text)
    return text[:200]


def _parse_place(exc: Exception, text: str) -> str | None:
    loc = getattr(exc, "loc", None)
    if isinstance(loc, int):
        line = text.count("\n", 0, loc) + 1
        col = loc - (text.rfind("\n", 0, loc) + 1) + 1
        return f"line {line} column {col}"
    return None
