"""The determination, top-down: `Determiner.determine` runs the steps of the package docstring
in order; `assemble` turns a SHACL report into a `Determination`."""

from __future__ import annotations

import os
from datetime import date
from urllib.parse import quote

from rdflib import URIRef
from rdflib.namespace import RDFS

from ..case import Case
from ..engines.compiled import Program, compile_pack
from ..engines.shacl import ShapesReport, ShapesRunner
from ..guard import check_case
from ..kb import KnowledgeBase, PolicyPack, PolicyVersion, as_date
from ..model import (
    Citation,
    ConditionHit,
    CriterionResult,
    Determination,
    Fact,
    Passage,
    PolicyRef,
    reference_sort_key,
)
from ..vocab import DETERMINATION_BASE, NR
from . import summary, verdicts
from .case_graph import CaseGraph, build_case_graph, case_chunks
from .citations import Citations
from .facts import FactTracer
from .text import local_name, str_or_none


#: the engines a Determiner runs shapes with; the first is the default
ENGINES = ("compiled", "pyshacl")


def default_engine() -> str:
    """The engine when none is named: NECESSITY_ENGINE if set (so that worker processes of a
    batch inherit the choice), else "compiled"."""
    return os.environ.get("NECESSITY_ENGINE") or ENGINES[0]


class Determiner:
    """Decides cases under the packs of one knowledge base; state is built once and reused
    (compiled programs or parsed shapes per pack, prepared trace queries, resolved citations).

    `engine`: "compiled" (default: rules, shapes and trace queries in pyoxigraph,
    `reasoner/engines/compiled.py`) or "pyshacl" (the reference engine). A pack whose `Program`
    has a `fallback` reason runs on pySHACL whatever the engine. The compiled state is plain data:
    `programs` maps each policy id to its `Program` (strings only, picklable); `warm()` fills it
    for every pack. Everything else the compiled engine keeps (`terms`: pyoxigraph terms of the
    knowledge) is rebuilt on first use."""

    def __init__(self, kb: KnowledgeBase, engine: str = "compiled"):
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
        self.kb = kb
        self.engine = engine
        self.programs: dict[str, Program] = {}
        self._terms = None
        self._runners: dict[str, ShapesRunner] = {}
        self._static: dict[tuple, dict] = {}
        self.facts = FactTracer(kb)
        self.citations = Citations(kb)

    def program(self, pack: PolicyPack) -> Program:
        """The pack's compiled Program (compiled on first use)."""
        program = self.programs.get(pack.policy_id)
        if program is None:
            program = self.programs[pack.policy_id] = compile_pack(self.kb, pack)
        return program

    def engine_for(self, pack: PolicyPack) -> str:
        """The engine that decides under `pack`: pySHACL if asked for or if the pack uses SHACL
        the compiled engine does not implement (`Program.fallback`), else the compiled one."""
        if self.engine == "pyshacl" or self.program(pack).fallback:
            return "pyshacl"
        return "compiled"

    def warm(self) -> "Determiner":
        """Compile every pack now (and the knowledge's pyoxigraph terms), not on first use."""
        for pack in self.kb.packs.values():
            self.program(pack)
        if self.engine == "compiled":
            self._compiled_terms()
        return self

    def _compiled_terms(self):
        if self._terms is None:
            from ..engines.compiled_data import Terms

            self._terms = Terms()
        return self._terms

    def determine(self, case: Case, policy_id: str, version: str | None = None) -> Determination:
        """Decide `case` under the pack `policy_id`: the version named, else the one in force
        on the service date, else the current one; the determination says which and why."""
        pack = self.kb.pack(policy_id)
        check_case(self.kb, case)  # before the request date is read (reasoner/guard)
        requested = as_date(case.graph.value(case.request, NR.requestedDate))
        policy_version, why = pack.select_version(version, on=requested)
        case_graph, report = self.validate(case, pack, checked=True)  # steps 1 and 2
        return self.assemble(case, pack, policy_version, case_graph, report, requested, why)

    def runner(self, pack: PolicyPack) -> ShapesRunner:
        runner = self._runners.get(pack.policy_id)
        if runner is None:
            runner = self._runners[pack.policy_id] = ShapesRunner(pack.graph)
        return runner

    def validate(self, case: Case, pack: PolicyPack, checked: bool = False,
                 report_graph: bool = False) -> tuple[CaseGraph, ShapesReport]:
        """Steps 1 and 2: the per-case graph, and the pack's SHACL report on it (`checked`: the
        guard already ran on this case, as in `determine`; `report_graph`: the compiled engine
        also writes the report as RDF, which pySHACL always does)."""
        if self.engine_for(pack) == "pyshacl":
            case_graph = build_case_graph(self.kb, case, checked=checked)
            return case_graph, self.runner(pack).validate(case_graph.data)
        from ..engines import compiled_run

        if not checked:
            check_case(self.kb, case)
        run = compiled_run.run_program(self.program(pack), case_chunks(self.kb, case),
                                       self._compiled_terms(), case.request)
        if report_graph:
            run.report.graph = compiled_run.report_graph(run.report, pack.graph)
        return CaseGraph(run.data, run.inferred, run.trace_rows), run.report

    def assemble(self, case: Case, pack: PolicyPack, version: PolicyVersion, cg: CaseGraph,
                 report: ShapesReport, requested: date | None,
                 version_selection: str | None = None) -> Determination:
        """Steps 3 to 6: verdicts and outcome, traced facts, citations, the case summary."""
        hits = verdicts.condition_hits(report, case.request, pack)
        criteria, requests = [], []
        for criterion in version.criteria:
            status, deciding = verdicts.verdict(hits.get(criterion, []))
            result = self.criterion_result(case, pack, criterion, status, deciding, cg)
            criteria.append(result)
            if status == "missing":
                requests.extend(verdicts.information_requests(result, deciding, pack))
        criteria.sort(key=lambda c: (c.section_order, reference_sort_key(c.ref)))
        outcome = verdicts.outcome(criteria)
        return Determination(
            case=str(case.node),
            case_id=case.id,
            policy=PolicyRef(
                id=pack.policy_id,
                version=version.version,
                iri=str(version.iri),
                title=pack.title,
                policy_iri=str(pack.policy_iri),
            ),
            service=summary.service(self.kb, case, cg),
            outcome=outcome,
            clinician_review_required=outcome == "denied",
            criteria=criteria,
            missing_information=verdicts.unique_requests(requests),
            patient=summary.patient(case, requested),
            diagnoses=summary.diagnoses(self.kb, case, cg),
            evidence=self.citations.evidence(pack, version),
            unrecognised=summary.unrecognised(self.facts, case, cg),
            not_counted=summary.not_counted(self.facts, case, cg),
            iri=f"{DETERMINATION_BASE}{quote(case.id, safe='')}/{pack.policy_id}/"
                f"{quote(local_name(version.iri), safe='')}",
            notice=self.kb.label_comment(NR.Denied) if outcome == "denied" else None,
            version_selection=version_selection,
        )

    def criterion_result(self, case: Case, pack: PolicyPack, criterion, status: str,
                         hits: list[ConditionHit], cg: CaseGraph) -> CriterionResult:
        """One criterion's result: its verdict with the facts, passage and citations behind it."""
        static = self._criterion_static(pack, criterion)
        facts = self.facts.trace(case, pack, criterion, cg)
        # the value a condition reported is a fact too, if the trace query did not name it
        for hit in hits:
            if (hit.value and hit.value != str(case.request)
                    and (URIRef(hit.value), None, None) in cg.data
                    and not any(f.iri == hit.value for f in facts)):
                facts.append(self.facts.describe(URIRef(hit.value), cg, pack))
        if status == "met" or not hits:
            message = static["message"]
        else:
            message = "; ".join(dict.fromkeys(h.message for h in hits))
        return CriterionResult(
            id=str(criterion),
            status=status,
            message=message,
            facts=sorted(facts, key=lambda f: (f.inferred, f.text, f.iri)),
            conditions=list(hits),
            **{k: (list(v) if isinstance(v, list) else v) for k, v in static.items()
               if k != "message"},
        )

    def _criterion_static(self, pack: PolicyPack, criterion) -> dict:
        """What a criterion's result says whatever the case (label, passage, citations,
        evidence, section), read from the pack once per process."""
        key = (pack.policy_id, criterion)
        static = self._static.get(key)
        if static is None:
            static = self._static[key] = self._read_criterion(pack, criterion)
        return static

    def _read_criterion(self, pack: PolicyPack, criterion) -> dict:
        g = pack.graph
        ref = str(g.value(criterion, NR.referenceId) or criterion)
        passage_node = g.value(criterion, NR.encodesPassage)
        passage = None
        if passage_node is not None:
            cite = g.value(passage_node, NR.citation)
            passage = Passage(
                iri=str(passage_node),
                text=str(g.value(passage_node, NR.passageText) or ""),
                section=str_or_none(g.value(passage_node, NR.section)),
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
            for source in self.citations.evidence_sources(item, pack):
                c = self.citation(source, pack)
                citations[c.id] = c
        section = g.value(criterion, NR.letterSection)
        return {
            "ref": ref,
            "label": str(g.value(criterion, RDFS.label) or ref),
            "message": str(g.value(criterion, NR.message) or ""),
            "citations": sorted(citations.values(), key=lambda c: c.id),
            "passage": passage,
            "rationale": str_or_none(g.value(criterion, NR.rationale)),
            "section": str(section) if section is not None else None,
            "section_order": self.citations.section_order(section, pack),
            "evidence": [str(e) for e in evidence],
        }

    # kept for callers of the former single-module API (tests, notebooks)
    def citation(self, node, pack: PolicyPack | None = None) -> Citation:
        return self.citations.citation(node, pack)

    def describe_fact(self, node, cg: CaseGraph, pack: PolicyPack | None = None,
                      inference=None) -> Fact:
        return self.facts.describe(node, cg, pack, inference)
