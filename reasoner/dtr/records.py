"""A stored decision record read back as its case and policy version, so that the service can
ask for what a stored pended determination lacks and re-decide it with the answers (docs/dtr.md,
"Over HTTP").

A record (`Reasoner.record_graph`) holds the determination written by the reasoner and the
case facts as they were decided (never what the rules inferred: those are derived again).
The case is the record minus the reasoner's own nodes: the determination and its fragments,
the policy version, the software agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import Graph, URIRef

from ..case import Case, case_from_graph
from ..errors import InputError
from ..vocab import DETERMINATION_BASE, NR, POLICY_BASE, SOFTWARE_AGENT


@dataclass(frozen=True)
class StoredDecision:
    iri: str
    case: Case
    policy_id: str
    version: str


def determination_iri(ident: str) -> str:
    """A determination IRI from an id (the IRI after the determination base) or the IRI."""
    return ident if ident.startswith(DETERMINATION_BASE) else DETERMINATION_BASE + ident


def stored_decision(kb, record: Graph, iri: str) -> StoredDecision:
    """The case and the policy version of the stored record of determination `iri`."""
    det = URIRef(iri)
    version_iri = record.value(det, NR.underPolicyVersion)
    case_node = record.value(det, NR.forCase)
    if version_iri is None or case_node is None:
        raise InputError("no stored determination with this id", source=iri)
    pack, version = None, None
    for p in kb.packs.values():
        for v in p.versions:
            if v.iri == version_iri:
                pack, version = p, v.version
    if pack is None:
        raise InputError(f"the record's policy version <{version_iri}> is not in the knowledge "
                         f"base", source=iri)
    case_graph = Graph()
    for s, p, o in record:
        if not str(s).startswith((DETERMINATION_BASE, POLICY_BASE, SOFTWARE_AGENT)):
            case_graph.add((s, p, o))
    tail = iri.removeprefix(DETERMINATION_BASE)
    case = case_from_graph(case_graph, source=f"record <{iri}>", kind="record",
                           default_id=tail.split("/", 1)[0])
    return StoredDecision(iri, case, pack.policy_id, version)
