"""The decision summary: what the analysts' queries read, written with every record.

A decision record (reasoner/render/rdf.py) holds ~800 triples; an analyst's question ("which
criteria deny most often?") touches a few of them per record, and joining them across 100,000
records costs seconds in any triple store (each join step is an index probe per record). The
summary turns those joins into one scan: in the named graph `SUMMARY_GRAPH`, each stored
determination ``<d>`` gets

- ``<d> nr:decisionProfile <profile>``: a `nr:DecisionProfile` node that determinations which
  decided alike *share*: the policy version, the outcome, the month of the service date, the
  verdict of every criterion, the decisive criteria (and those resting on inferred facts), the
  information requested, the evidence cited and the requested service code. A query counts
  records per profile (one scan of one predicate) and reads the few distinct profiles after;
- ``<d> nr:serviceDay <day>``: a `nr:ServiceDay` node (policy version + service date), shared
  the same way (superseded-version questions are per version and day);
- per-record values: ``nr:caseId``, ``nr:summaryServiceDate``, ``nr:summaryRequestedDate``,
  ``nr:earliestReasonOnset`` and ``nr:reasonOnsetDays`` (days from the earliest onset of a
  reason diagnosis on or before the service date, to the service date).

Shared nodes are named by a hash of their content, so writing the same profile again adds
nothing; a record's own summary triples all have the determination as subject, so replacing a
record replaces them (``DELETE WHERE { GRAPH S { <d> ?p ?o } }``) in the same transaction.

The summary is a function of the record alone (`summary_ntriples`): the store derives it when it
writes a record (reasoner/store.py), and for records stored before summaries existed
(`DecisionStore.ensure_summaries`). It reads only the nodes the reasoner wrote (the
determination, its criterion results and information requests) and the case facts the record
names as the request's (code, dates, reason diagnoses), which a case states as its own facts.
Terms: ontology/policy.ttl, "Decision summaries"; docs/store.md, "The decision summary".
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import date

from .errors import InputError
from .vocab import NR

SUMMARY_GRAPH = "https://w3id.org/necessity/summary"
"""Named graph holding the summary of every stored record."""
SUMMARY_FORMAT = "1"
"""Version of the summary's layout; a store whose summaries have another one is re-derived."""
SUMMARY_BASE = "https://w3id.org/necessity/summary/"

_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_XSD = "http://www.w3.org/2001/XMLSchema#"
_VERDICT_PROPERTY = {"Met": "criterionMet", "Unmet": "criterionUnmet",
                     "Missing": "criterionMissing", "NotApplicable": "criterionNotApplicable"}
#: the verdict that decides each outcome (an approval needs every met criterion; a denial rests
#: on its unmet criteria, a pend on its missing ones): the definition of "decisive criteria"
_DECISIVE = {"Approved": "Met", "Denied": "Unmet", "Pended": "Missing"}


#: the record's predicates the summary reads
_READ_PROPERTIES = ("outcome", "underPolicyVersion", "serviceDate", "forCase", "hasCriterionResult",
                    "criterion", "verdict", "decidedByInference", "supportingEvidence",
                    "hasInformationRequest", "referenceId", "requestedInformation",
                    "documentationLocation", "forCriterion", "indexRequest", "code",
                    "requestedDate", "reasonDiagnosis", "onsetDate")
_TYPED = f"<{_RDF_TYPE}> <{NR}Determination>"
_READ = re.compile(r" <%s(?:%s)> " % (re.escape(str(NR)), "|".join(_READ_PROPERTIES)))


def _nr(name: str) -> str:
    return f"<{NR}{name}>"


def _iri(value: str) -> str:
    return f"<{value}>"


def _lit(value: str, datatype: str | None = None) -> str:
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{text}"^^<{datatype}>' if datatype else f'"{text}"'


def _node(kind: str, lines: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:24]
    return f"{SUMMARY_BASE}{kind}/{digest}"


class _Record:
    """A record's triples indexed by subject: {subject: {predicate: [object terms]}}."""

    def __init__(self, ntriples: str):
        import pyoxigraph as ox

        self.by_subject: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        # Only the lines with a predicate the summary reads are parsed (~60 of ~800).
        lines = "\n".join(line for line in ntriples.split("\n")
                           if _READ.search(line) or _TYPED in line)
        for t in ox.parse(lines.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES):
            if isinstance(t.subject, ox.NamedNode):
                self.by_subject[t.subject.value][t.predicate.value].append(t.object)

    def objects(self, subject: str, prop: str) -> list:
        return self.by_subject.get(subject, {}).get(NR + prop, [])

    def is_determination(self, subject: str) -> bool:
        return any(getattr(o, "value", None) == f"{NR}Determination"
                   for o in self.by_subject.get(subject, {}).get(_RDF_TYPE, []))

    def named(self, subject: str, prop: str):
        """The first IRI value of `prop` (a literal where an IRI belongs is left out)."""
        iris = self.iris(subject, prop)
        return iris[0] if iris else None

    def iris(self, subject: str, prop: str) -> list[str]:
        return sorted({o.value for o in self.objects(subject, prop) if hasattr(o, "value")
                       and type(o).__name__ == "NamedNode"})

    def one(self, subject: str, prop: str):
        values = self.objects(subject, prop)
        return values[0] if values else None


def _date(term) -> date | None:
    if term is None or type(term).__name__ != "Literal":
        return None
    try:
        return date.fromisoformat(term.value[:10])
    except ValueError:
        return None


def summary_ntriples(det_iri: str, ntriples: str) -> str:
    """The summary of one record (N-Triples text) as N-Triples, for `SUMMARY_GRAPH`; empty
    when the text holds no determination `det_iri`."""
    rec = _Record(ntriples)
    if not rec.is_determination(det_iri):
        return ""
    # Values are taken where they are IRIs (or dates) as the reasoner writes them; a record
    # edited by hand to hold a literal there is summarised without that value.
    outcome, version = rec.named(det_iri, "outcome"), rec.named(det_iri, "underPolicyVersion")
    outcome_name = outcome.rsplit("#", 1)[-1] if outcome else ""
    service = _date(rec.one(det_iri, "serviceDate"))
    case = rec.named(det_iri, "forCase")
    requests = rec.iris(case, "indexRequest") if case else []

    profile: list[str] = [
        f"{_nr('serviceMonth')} {_lit(service.isoformat()[:7] if service else 'no date')}"]
    if version:
        profile.append(f"{_nr('profileVersion')} {_iri(version)}")
    if outcome:
        profile.append(f"{_nr('profileOutcome')} {_iri(outcome)}")
    extra: list[str] = []  # descriptions of information-request nodes
    inferred, decisive_verdict = set(), _DECISIVE.get(outcome_name)
    for result in rec.iris(det_iri, "hasCriterionResult"):
        criterion, verdict = rec.named(result, "criterion"), rec.named(result, "verdict")
        if criterion is None or verdict is None:
            continue
        verdict_name = verdict.rsplit("#", 1)[-1]
        if verdict_name in _VERDICT_PROPERTY:
            profile.append(f"{_nr(_VERDICT_PROPERTY[verdict_name])} {_iri(criterion)}")
        if verdict_name == decisive_verdict:
            profile.append(f"{_nr('decisiveCriterion')} {_iri(criterion)}")
            facts = {o.value for o in rec.objects(result, "decidedByInference")}
            if facts:
                profile.append(f"{_nr('decisiveOnInference')} {_iri(criterion)}")
                inferred |= facts
        for statement in rec.iris(result, "supportingEvidence"):
            profile.append(f"{_nr('evidenceCited')} {_iri(statement)}")
    if inferred:
        count = _lit(str(len(inferred)), _XSD + "integer")
        profile.append(f"{_nr('decisiveInferredFacts')} {count}")
    for req in rec.iris(det_iri, "hasInformationRequest"):
        desc = [f"<{_RDF_TYPE}> {_nr('InformationRequest')}"]
        for prop in ("referenceId", "requestedInformation", "documentationLocation"):
            for value in rec.objects(req, prop):
                desc.append(f"{_nr(prop)} {_lit(value.value)}")
        for criterion in rec.iris(req, "forCriterion"):
            desc.append(f"{_nr('forCriterion')} {_iri(criterion)}")
        node = _node("request", desc)
        profile.append(f"{_nr('requestsInformation')} {_iri(node)}")
        extra += [f"{_iri(node)} {line} ." for line in desc]
    for req in requests:
        for code in rec.iris(req, "code"):
            profile.append(f"{_nr('requestedCode')} {_iri(code)}")
    profile = sorted(set(profile))
    profile_iri = _node("profile", profile)

    day_lines = [f"{_nr('profileVersion')} {_iri(version)}"] if version else []
    if service:
        day_lines.append(f"{_nr('summaryServiceDate')} {_lit(service.isoformat(), _XSD + 'date')}")
    day_iri = _node("day", day_lines)

    d = _iri(det_iri)
    out = [f"{d} {_nr('decisionProfile')} {_iri(profile_iri)} .",
           f"{d} {_nr('serviceDay')} {_iri(day_iri)} ."]
    case_id = det_iri.rsplit("/", 3)[-3] if det_iri.count("/") >= 3 else ""
    if case_id:
        out.append(f"{d} {_nr('caseId')} {_lit(case_id)} .")
    if service:
        out.append(f"{d} {_nr('summaryServiceDate')} {_lit(service.isoformat(), _XSD + 'date')} .")
    requested = sorted({day for req in requests
                        for day in map(_date, rec.objects(req, "requestedDate")) if day})
    if requested:
        first_request = _lit(requested[0].isoformat(), _XSD + "date")
        out.append(f"{d} {_nr('summaryRequestedDate')} {first_request} .")
    onsets = [day for req in requests for dx in rec.iris(req, "reasonDiagnosis")
              for day in map(_date, rec.objects(dx, "onsetDate"))
              if day and service and day <= service]
    if onsets:
        first = min(onsets)
        out.append(f"{d} {_nr('earliestReasonOnset')} {_lit(first.isoformat(), _XSD + 'date')} .")
        out.append(f"{d} {_nr('reasonOnsetDays')} "
                   f"{_lit(str((service - first).days), _XSD + 'integer')} .")
    out += [f"{_iri(profile_iri)} <{_RDF_TYPE}> {_nr('DecisionProfile')} ."]
    out += [f"{_iri(profile_iri)} {line} ." for line in profile]
    out += [f"{_iri(day_iri)} <{_RDF_TYPE}> {_nr('ServiceDay')} ."]
    out += [f"{_iri(day_iri)} {line} ." for line in day_lines]
    out += sorted(set(extra))
    return "\n".join(out) + "\n"


def replace_summary_update(det_iri: str, summary: str) -> str:
    """SPARQL Update text that replaces the summary of `det_iri` by `summary` (N-Triples)."""
    text = f"DELETE WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ <{det_iri}> ?p ?o }} }}"
    if summary:
        text += f" ;\nINSERT DATA {{ GRAPH <{SUMMARY_GRAPH}> {{\n{summary}}} }}"
    return text


# ---------------------------------------------------------------------- keeping a store's summary

_MARKER = f"<{SUMMARY_GRAPH}> <{NR}summaryFormat>"
_SUMMARIZED = (f"SELECT ?d WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ ?d <{NR}decisionProfile> ?p }} }}")
_COUNT_SUMMARIZED = (f"SELECT (COUNT(?d) AS ?n) WHERE {{ GRAPH <{SUMMARY_GRAPH}> "
                     f"{{ ?d <{NR}decisionProfile> ?p }} }}")
_COUNT_RECORDS = (f"SELECT (COUNT(?g) AS ?n) WHERE {{ GRAPH ?g {{ ?g a <{NR}Determination> }} }}")


def _marker(store) -> str | None:
    rows = store.select_rows(f"SELECT ?f WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ {_MARKER} ?f }} }}")
    return rows[0]["f"] if rows else None


def ensure_summaries(store, rederive: set[str] | None = None, everything: bool = False) -> int:
    """Make the summary graph of `store` describe exactly its records; returns how many records
    were (re)summarised.

    Cheap when nothing is missing (a marker holding `SUMMARY_FORMAT` and as many summaries as
    records: two counts). Otherwise, or for the records in `rederive` (or all of them with
    `everything`, or when the marker's format differs): the summaries of records that lack one
    are derived from the stored records, those of records gone are removed, then the marker is
    set. Each step is one update; a query run after this returns answers from a whole summary."""
    marker = _marker(store)
    if not everything and not rederive and marker == SUMMARY_FORMAT:
        counts = [store.select_rows(q)[0]["n"] for q in (_COUNT_RECORDS, _COUNT_SUMMARIZED)]
        if counts[0] == counts[1]:
            return 0
    records = set(store.records())
    summarized = {row["d"] for row in store.select_rows(_SUMMARIZED)}
    if everything or marker != SUMMARY_FORMAT:
        todo = records
    else:
        todo = (records - summarized) | (set(rederive or ()) & records)
    parts = [replace_summary_update(iri, "") for iri in sorted(summarized - records)]
    done = 0
    try:
        for iri in sorted(todo):
            summary = summary_ntriples(iri, store.record_ntriples(iri))
            parts.append(replace_summary_update(iri, summary))
            done += 1
            if len(parts) >= 200:
                store.raw_update(" ;\n".join(parts))
                parts = []
        parts.append(f"DELETE WHERE {{ GRAPH <{SUMMARY_GRAPH}> {{ {_MARKER} ?f }} }} ;\n"
                     f"INSERT DATA {{ GRAPH <{SUMMARY_GRAPH}> {{ {_MARKER} \"{SUMMARY_FORMAT}\" }} }}")
        store.raw_update(" ;\n".join(parts))
    except InputError as exc:  # e.g. a read-only endpoint: say what the queries would miss
        raise InputError(f"the decision summary of {len(todo) - done} record(s) is missing and "
                         f"could not be added, so queries/ would answer from a partial "
                         f"summary: {exc}") from None
    return done


def replace_record_update(graph_iri: str, ntriples: str, summary: str | None) -> str:
    """SPARQL Update text replacing one record graph (and, with `summary`, its summary)."""
    text = (f"DROP SILENT GRAPH <{graph_iri}> ;\n"
            f"INSERT DATA {{ GRAPH <{graph_iri}> {{\n{ntriples}\n}} }}")
    if summary is not None:
        text += " ;\n" + replace_summary_update(graph_iri, summary)
    return text


_IRI_IN_TEXT = re.compile(r"<([^<>\s\"{}|^`\\]+)>")
#: update forms that may touch record graphs they do not name
_GRAPH_VARIABLE = re.compile(r"\b(GRAPH|WITH)\s+[?$]|\bUSING\b|\b(CLEAR|DROP)\s+(ALL|NAMED)\b"
                             r"|\b(MOVE|COPY|ADD|LOAD)\b", re.IGNORECASE)


def after_update(store, sparql: str) -> None:
    """After an update: re-derive the summaries of the records it names (a record changed in
    place), or of every record when it may have touched records it does not name (a `GRAPH
    ?g` pattern, `LOAD`, `MOVE`, ...), and add/remove those of records it added/removed."""
    if _GRAPH_VARIABLE.search(sparql):
        ensure_summaries(store, everything=True)
    else:
        ensure_summaries(store, rederive=set(_IRI_IN_TEXT.findall(sparql)) or None)
