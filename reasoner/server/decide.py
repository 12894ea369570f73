"""Decisions for the payer's endpoints (CRD hooks, PAS `Claim/$submit`): a FHIR payload held in
memory becomes a case (the same intake, guard and limits as `reasoner determine` on a file),
is decided under every pack that covers its service (`Reasoner.covering_policies`), and each
determination is stored as a decision record (`reasoner.store`, one named graph per
determination).

Why one lock: rdflib and pySHACL are not thread-safe, and the determination pages re-derive
letters with the same `Reasoner`; so decisions and pages share `PageMaker.lock`, and a request
waits for it at most its time limit (`Settings.decision_timeout`). The decision runs in a worker
thread; past the limit the request is answered 503 and the thread finishes on its own (its
record is still written whole: a store write is one transaction).

`Verdicts` is what both endpoints answer from: read from a fresh `Determination`, or from a
stored record (PAS resubmission and `$inquire`), so the two give the same answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import URIRef
from rdflib.namespace import RDFS

from ..errors import InputError
from ..vocab import DETERMINATION_BASE, NR

TABLE = json.loads((Path(__file__).with_name("service-codes.json")).read_text("utf-8"))


class NotCovered(Exception):
    """No pack covers the request's service: the hooks say nothing about it (CRD: no card)."""


class Busy(Exception):
    """The decision did not start or finish within the request's time limit."""


@dataclass
class Criterion:
    ref: str
    label: str
    status: str
    message: str


@dataclass
class Verdicts:
    """One determination as the endpoints report it."""

    iri: str
    policy_id: str
    version: str
    title: str
    outcome: str
    criteria: list[Criterion]
    notice: str | None = None
    missing: list[dict] = field(default_factory=list)   # what / where / criterion ref
    service_code: str | None = None

    def decisive(self) -> list[Criterion]:
        """The criteria that decided the outcome: unmet ones decide a denial, missing ones a
        pending, and every met criterion an approval."""
        wanted = {"denied": "unmet", "pended": "missing", "approved": "met"}[self.outcome]
        return [c for c in self.criteria if c.status == wanted]


def combined(outcomes: list[str]) -> str:
    """The outcome of a request decided under several packs: the first of the table's
    `precedence` any pack gave (a payer needs every covering policy satisfied)."""
    for name in TABLE["precedence"]:
        if name in outcomes:
            return name
    raise ValueError(f"no outcome among {outcomes}")


def from_determination(d) -> Verdicts:
    by_ref = {c.ref: c for c in d.criteria}
    missing = [{"what": m.what, "where": m.where,
                "criterion": (by_ref[m.ref].ref if m.ref in by_ref else m.ref)}
               for m in d.missing_information]
    return Verdicts(d.iri, d.policy.id, d.policy.version, d.policy.title, d.outcome,
                    [Criterion(c.ref, c.label, c.status, c.message) for c in d.criteria],
                    d.notice, missing, (d.service or {}).get("code"))


def from_record(record, iri: str, versions: dict | None = None) -> Verdicts:
    """A stored decision record read back. Its policy version (`nr:underPolicyVersion`) is
    named by `versions` (version IRI -> policy id, version, title); a version the knowledge
    base no longer has is named by the record's IRI
    (``<DETERMINATION_BASE><case-id>/<policy-id>/<version>``)."""
    det = URIRef(iri)
    parts = iri[len(DETERMINATION_BASE):].split("/")
    policy_id, version = (parts[1], parts[2]) if len(parts) >= 3 else ("", "")
    title = policy_id
    known = (versions or {}).get(str(record.value(det, NR.underPolicyVersion)))
    if known is not None:
        policy_id, version, title = known
    name = str(record.value(det, NR.outcome) or "").rsplit("#", 1)[-1].lower()
    outcome = name if name in ("approved", "denied", "pended") else "pended"
    crit = []
    for node in record.objects(det, NR.hasCriterionResult):
        verdict = str(record.value(node, NR.verdict) or "").rsplit("#", 1)[-1]
        status = {"Met": "met", "Unmet": "unmet", "Missing": "missing",
                  "NotApplicable": "not-applicable"}.get(verdict, "missing")
        crit.append(Criterion(str(record.value(node, NR.referenceId) or ""),
                              str(record.value(node, RDFS.label) or ""), status,
                              str(record.value(node, NR.message) or "")))
    from ..model import reference_sort_key

    crit.sort(key=lambda c: reference_sort_key(c.ref))
    notice = record.value(det, RDFS.comment)
    return Verdicts(iri, policy_id, version, title, outcome, crit,
                    str(notice) if notice is not None else None)


def case_id_for(kind: str, key: str) -> str:
    """A case id that names no patient: the kind and a digest of the request's key."""
    return f"{kind}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}"


class Decider:
    """Decides in-memory FHIR payloads and stores their records."""

    def __init__(self, store, pages, on_stored=None, cache_size: int = 512):
        self.store, self.pages, self.on_stored = store, pages, on_stored
        self._cache: OrderedDict[str, list[Verdicts]] = OrderedDict()
        self._versions: dict | None = None
        self.cache_size = cache_size

    # -- reading ------------------------------------------------------------------------
    def case(self, data: dict, case_id: str):
        """The case of a FHIR payload, through the intake and the case guard (the limits of
        `reasoner determine`); an `InputError` names the place."""
        from ..case import case_from_graph
        from ..guard import check_case_graph
        from ..intake import fhir

        source = f"{case_id}.json"  # the intake names the case by the file stem
        reasoner = self.pages.reasoner()
        rdflib_log = logging.getLogger("rdflib")
        level = rdflib_log.level
        rdflib_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = fhir.map_bundle(data, source, kb=reasoner.kb.knowledge)
        finally:
            rdflib_log.setLevel(level)
        check_case_graph(graph, source)
        return case_from_graph(graph, source=source, kind="fhir", default_id=case_id)

    # -- deciding -----------------------------------------------------------------------
    def decide(self, data: dict, case_id: str, wait: float, cache_key: str | None = None
               ) -> list[Verdicts]:
        """Decide `data` under every covering pack and store the records (call in a worker
        thread). `NotCovered` when no pack covers the service; `Busy` when the lock is not
        free within `wait` seconds; `InputError` for bad input."""
        if cache_key is not None and cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            return self._cache[cache_key]
        if not self.pages.lock.acquire(timeout=max(wait, 0.01)):
            raise Busy("the reasoner is busy; try again")
        try:
            if cache_key is not None and cache_key in self._cache:
                return self._cache[cache_key]
            reasoner = self.pages.reasoner()
            try:
                case = self.case(data, case_id)
                policies = reasoner.covering_policies(case)
            except InputError as exc:
                # the caller sent a request, not a file: name it so
                text = str(exc).replace(f"{case_id}.json", "request")
                if "no policy covers" in text or "no service code" in text:
                    raise NotCovered(text) from None
                raise InputError(text) from None
            decisions = [reasoner.determine(case, pid) for pid in policies]
            records = [(d.iri, reasoner.record_graph(d, case)) for d in decisions]
            if len(records) == 1:
                self.store.put(*records[0])
            elif hasattr(self.store, "put_many"):
                from ..store import record_ntriples

                self.store.put_many([(iri, record_ntriples(g)) for iri, g in records])
            else:
                for iri, g in records:
                    self.store.put(iri, g)
            out = [from_determination(d) for d in decisions]
        finally:
            self.pages.lock.release()
        if self.on_stored is not None:
            self.on_stored()
        if cache_key is not None:
            self._cache[cache_key] = out
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    # -- reading back -------------------------------------------------------------------
    def versions(self, wait: float) -> dict:
        """Policy version IRI -> (policy id, version, title), from the knowledge base (loaded
        under the lock: the first call may find the start-up thread loading it)."""
        if self._versions is None:
            if not self.pages.lock.acquire(timeout=max(wait, 0.01)):
                raise Busy("the reasoner is busy; try again")
            try:
                kb = self.pages.reasoner().kb
                self._versions = {str(v.iri): (p.policy_id, v.version, p.title)
                                  for p in kb.packs.values() for v in p.versions}
            finally:
                self.pages.lock.release()
        return self._versions

    def stored(self, case_id: str, wait: float) -> list[Verdicts]:
        """The stored records of a case id (its determinations under each pack), in IRI
        order; [] when none."""
        from ..store import safe_iri

        prefix = safe_iri(f"{DETERMINATION_BASE}{case_id}/")
        rows = self.store.select_rows(
            f"SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?g a <{NR.Determination}> }} "
            f"FILTER(STRSTARTS(STR(?g), \"{prefix}\")) }} ORDER BY ?g")
        versions = self.versions(wait) if rows else {}
        return [from_record(self.store.record(r["g"]), r["g"], versions) for r in rows]


class Refresher:
    """Takes a new snapshot for the SPARQL workers after records were stored, at most every
    `every` seconds (a snapshot copies the store; one per hook call would be wasteful)."""

    def __init__(self, runner, every: float = 2.0):
        self.runner, self.every = runner, every
        self.pending, self.last = False, 0.0

    def mark(self) -> None:
        self.pending = True

    def tick(self) -> None:
        if self.pending and time.monotonic() - self.last >= self.every:
            self.pending, self.last = False, time.monotonic()
            self.runner.refresh()
