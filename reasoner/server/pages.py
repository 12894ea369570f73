"""The determination pages of `reasoner serve`: what each page shows, as plain data for the
templates in ``reasoner/web/templates/`` (Jinja2, autoescape on: every value is escaped there).

A page re-derives the letter and trace from the case facts its record holds, with the current
knowledge base. That is rdflib and pySHACL work, not thread-safe and sometimes slow, so it runs
under one lock in a worker thread with a time limit (see `reasoner.server.app`): past the limit,
or while another page holds the lock, the page shows the stored verdicts and says why the letter
is missing, so one slow record never stalls the other pages.
"""

from __future__ import annotations

import threading
import urllib.parse

from rdflib import URIRef
from rdflib.namespace import RDFS

from ..errors import InputError, ReasonerError
from ..model import reference_sort_key
from ..store import KB_GRAPH, safe_iri
from ..vocab import NR

PROV_GEN = URIRef("http://www.w3.org/ns/prov#wasGeneratedBy")
PROV_USED = URIRef("http://www.w3.org/ns/prov#used")
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def short(node) -> str:
    text = str(node or "")
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def verdict_name(name: str) -> str:
    return {"Met": "met", "Unmet": "unmet", "Missing": "missing",
            "NotApplicable": "not-applicable"}.get(name, name)


def outcome_name(node) -> str:
    """A stored outcome as one of the ontology's outcome names, else 'unknown': the value is a
    CSS class and page text, so it never carries what a record happens to hold."""
    name = short(node).lower()
    return name if name in ("approved", "denied", "pended") else "unknown"


def list_context(store) -> dict:
    rows = store.select_rows(f"""
        SELECT ?d ?label ?outcome ?date WHERE {{ GRAPH ?d {{
          ?d a <{NR.Determination}> ; <{NR.outcome}> ?outcome .
          OPTIONAL {{ ?d <{RDFS.label}> ?label }}
          OPTIONAL {{ ?d <{NR.serviceDate}> ?date }} }} }} ORDER BY ?d""")
    items, seen = [], set()
    for r in rows:
        if r["d"] in seen or r["d"] == KB_GRAPH:
            continue
        seen.add(r["d"])
        items.append({"href": "/determination?iri=" + urllib.parse.quote(r["d"], safe=""),
                      "label": r.get("label") or r["d"], "outcome": outcome_name(r["outcome"]),
                      "date": r.get("date", "")})
    return {"title": "Determinations", "rows": items}


def is_record(store, iri: str) -> bool:
    """True when `iri` names a stored determination record (its own graph says it is one)."""
    if iri == KB_GRAPH:
        return False
    rows = store.select_rows(
        f"SELECT ?x WHERE {{ GRAPH <{iri}> {{ <{iri}> <{RDF_TYPE}> <{NR.Determination}> }} }} "
        "LIMIT 1")
    return bool(rows)


class PageMaker:
    """Re-derives letters for the determination pages, one at a time, with a time limit."""

    def __init__(self, root=None):
        self.root = root
        self._reasoner = None
        self.lock = threading.Lock()

    def reasoner(self):
        if self._reasoner is None:
            from ..api import Reasoner

            self._reasoner = Reasoner.load(self.root)
        return self._reasoner

    def warm(self) -> None:
        """Load the knowledge base now (in a background thread at start-up)."""
        with self.lock:
            try:
                self.reasoner()
            except ReasonerError:
                pass

    def load(self, store, iri: str):
        """The stored record of `iri`, or None when `iri` is not a stored determination."""
        iri = safe_iri(iri)
        if not is_record(store, iri):
            return None
        record = store.record(iri)
        det = URIRef(iri)
        stored = {str(record.value(n, NR.referenceId)): short(record.value(n, NR.verdict))
                  for n in record.objects(det, NR.hasCriterionResult)}
        return record, det, stored

    def rederive(self, loaded, wait: float):
        """(Determination, letter, notes) re-derived under the lock; waits at most `wait`
        seconds for the lock (another page, or the knowledge base loading, holds it)."""
        record, det, stored = loaded
        outcome = outcome_name(record.value(det, NR.outcome))
        if not self.lock.acquire(timeout=wait):
            return None, None, ["The letter is not shown: the server is busy re-deriving another "
                                "page (or loading the knowledge base); reload this page in a "
                                "moment."]
        notes = []
        try:
            d, letter, changed = self._rederive(record, det)
        except ReasonerError as exc:
            return None, None, [f"The letter cannot be re-derived: {exc}"]
        finally:
            self.lock.release()
        if changed:
            notes.append(f"The knowledge base has changed since this decision ({changed} "
                         "file(s) differ from the hashes in the record): the letter and "
                         "trace below are re-derived with the current files.")
        # stored verdicts are IRIs (nr:Met), fresh ones strings ('met'): compare as strings
        if d is not None and (d.outcome != outcome or {c.ref: c.status for c in d.criteria}
                              != {r: verdict_name(v) for r, v in stored.items()}):
            notes.append("Re-deriving with the current knowledge base gives a different "
                         f"result ({d.outcome}); the stored verdicts are shown in the table.")
        return d, letter, notes

    @staticmethod
    def context(loaded, d, letter, notes) -> dict:
        record, det, _ = loaded
        iri = str(det)
        return {"title": str(record.value(det, RDFS.label) or iri), "iri": iri,
                "outcome": outcome_name(record.value(det, NR.outcome)), "notes": notes,
                "letter": letter, "trace": trace_rows(record, det, d),
                "hashes": hash_rows(record, det)}

    def _rederive(self, record, det):
        """The Determination and letter, re-derived from the case facts the record holds."""
        from rdflib import Graph

        from ..case import case_from_graph
        from ..kb import file_hash

        r = self.reasoner()
        base = str(det)
        version = record.value(det, NR.underPolicyVersion)
        facts = Graph()
        for s, p, o in record:
            if str(s).startswith(base) or s == version or str(s).endswith("/software/reasoner"):
                continue
            facts.add((s, p, o))
        policy_id = version_name = None
        for pack in r.kb.packs.values():
            for v in pack.versions:
                if v.iri == version:
                    policy_id, version_name = pack.policy_id, v.version
        if policy_id is None:
            raise InputError(f"policy version {version} is not in the knowledge base")
        case = case_from_graph(facts, source=base, kind="turtle", default_id="record")
        d = r.determine(case, policy_id, version_name)
        changed = 0
        for path, digest in hash_rows(record, det):
            target = r.kb.root / path
            if not target.exists() or f"sha256:{file_hash(target)}" != digest:
                changed += 1
        return d, r.letter(d), changed


def trace_rows(record, det, d) -> list[dict]:
    derived = {c.ref: c for c in d.criteria} if d is not None else {}
    rows = []
    results = sorted(record.objects(det, NR.hasCriterionResult),
                     key=lambda n: reference_sort_key(str(record.value(n, NR.referenceId))))
    for node in results:
        ref = str(record.value(node, NR.referenceId))
        verdict = verdict_name(short(record.value(node, NR.verdict)))
        if verdict not in ("met", "unmet", "missing", "not-applicable"):
            verdict = "unknown"
        c = derived.get(ref)
        if c is not None:
            facts = [{"text": f.text, "inferred": bool(f.inferred), "inference": f.inference or "",
                      "source": f.source or "", "code": False} for f in c.facts]
            sources = [{"text": cite.text, "code": False} for cite in c.citations]
            passage = c.passage.text if c.passage and c.passage.text else ""
            message = c.message
        else:
            facts = [{"text": str(f), "inferred": p == NR.decidedByInference, "inference": "",
                      "source": "", "code": True}
                     for p in (NR.decidedBy, NR.decidedByInference)
                     for f in record.objects(node, p)]
            sources = [{"text": str(s), "code": True} for s in record.objects(node, NR.citesSource)]
            passage = ""
            message = str(record.value(node, NR.message) or "")
        rows.append({"ref": ref, "label": str(record.value(node, RDFS.label) or ref),
                     "verdict": verdict, "message": message, "passage": passage,
                     "facts": facts, "sources": sources})
    return rows


def hash_rows(record, det) -> list[tuple[str, str]]:
    activity = next(record.objects(det, PROV_GEN), None)
    rows = []
    for used in record.objects(activity, PROV_USED) if activity is not None else ():
        path, digest = record.value(used, RDFS.label), record.value(used, NR.contentHash)
        if path is not None and digest is not None:
            rows.append((str(path), str(digest)))
    return sorted(rows)
