"""`reasoner check`: which engine decides under each pack, and why (kind `engine`, a note).

A pack whose condition shapes are SHACL-SPARQL node shapes runs on the compiled engine
(pyoxigraph, `reasoner/engines/compiled.py`); a pack using SHACL the compiled engine does not
implement (a SHACL Core constraint, a property shape, another target kind, ...) runs on pySHACL,
and the note says which construct made it so. Both decide the same; only the speed differs.
"""

from __future__ import annotations

from pathlib import Path

from rdflib import Graph
from rdflib.namespace import RDF

from ..engines.compiled import compile_program, compile_rules
from ..vocab import NR
from .problems import INFO, Problem
from .project import Project


def check_engines(project: Project) -> list[Problem]:
    from ..kb import PolicyPack

    rules = compile_rules(sorted(f.path for f in project.rq_files
                                 if f.area == "knowledge" and Path(f.rel).parent.name == "rules"))
    out = []
    for folder, files in sorted(project.packs().items()):
        graph = Graph()
        for f in files:
            graph += f.graph
        policy = next(graph.subjects(RDF.type, NR.CoveragePolicy), None)
        if policy is None:
            continue  # shapes that check shapes (shapes/meta), not a policy
        policy_id = str(graph.value(policy, NR.policyId) or folder)
        pack = PolicyPack(policy_id, project.root / "shapes" / folder, graph, policy, policy_id, [])
        try:
            program = compile_program(pack, rules)
        except Exception as exc:  # a pack other checks already report as broken
            out.append(_note(folder, policy_id, f"runs on pySHACL: it could not be compiled "
                                                f"({type(exc).__name__}: {exc})"))
            continue
        if program.fallback:
            out.append(_note(folder, policy_id, f"runs on pySHACL, not the compiled engine: "
                                                f"{program.fallback}"))
        else:
            out.append(_note(folder, policy_id, f"runs on the compiled engine "
                                                f"({program.summary.split(': ', 1)[1]})",
                             "nothing to fix"))
    return out


_FIX = ("nothing to fix: both engines decide the same, pySHACL more slowly; to run the pack "
        "compiled, write its conditions as SHACL-SPARQL constraints of node shapes targeted with "
        "sh:targetNode, sh:targetSubjectsOf or sh:targetObjectsOf (docs/architecture.md)")


def _note(folder: str, policy_id: str, text: str, fix: str = _FIX) -> Problem:
    return Problem(kind="engine", severity=INFO, file=f"shapes/{folder}",
                   message=f"pack {policy_id} {text}", fix=fix)
