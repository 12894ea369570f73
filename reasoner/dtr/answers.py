"""A FHIR R4 `QuestionnaireResponse` merged into the case, and the case decided again (Da Vinci
DTR; docs/dtr.md, "How answers become facts").

1. The response is read and checked: FHIR R4 structure (`engines/fhir.py`), that it answers the
   questionnaire the pended determination asks now (`questionnaire`, url|version), that every
   linkId is an item of it, every answer of its item's type, inside its answer options and
   units, within its possible range, and no date after the day it was answered or before the
   patient's birth. The first problem is one `InputError` naming the file and the item.
2. Each answered question's `nr:answerUpdate` (a SPARQL INSERT, knowledge data) runs with the
   answers bound; the facts it adds are derived from one source document, "answered in the
   questionnaire on <date>", attributed to the response's author when it names one.
3. The merged case goes through the same guards as any case (`reasoner/guard/`), is decided
   under the same policy version, and the new determination (`Revision`) names the one it
   revises (`prov:wasRevisionOf`) and the answers it was re-decided with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD

from ..case import Case
from ..determine import build_case_graph
from ..errors import InputError
from ..model import Determination
from ..vocab import CASE_BASE, NR, PREFIXES
from .questionnaire import build_questionnaire, canonical
from .questions import Part, Question, question_book

#: QuestionnaireResponse.status values whose answers are read (FHIR R4 value set
#: questionnaire-answers-status); "entered-in-error" and "stopped" are refused
READ_STATUSES = ("in-progress", "completed", "amended")
#: FHIR item type -> the answer[x] element it takes (FHIR R4 Questionnaire.item.type)
ANSWER_ELEMENT = {"date": "valueDate", "dateTime": "valueDateTime", "decimal": "valueDecimal",
                  "integer": "valueInteger", "boolean": "valueBoolean", "string": "valueString",
                  "choice": "valueCoding", "quantity": "valueQuantity"}
MAX_BYTES = 1_000_000


@dataclass
class Revision(Determination):
    """A determination re-decided with questionnaire answers; it revises `revision_of`."""

    revision_of: str = ""
    answers: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["revision_of"] = self.revision_of
        out["re_decided_with_answers"] = self.answers
        return out


def read_response(path: str | Path) -> dict:
    """The QuestionnaireResponse JSON of a file; bad input names the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=str(path))
    if path.stat().st_size > MAX_BYTES:
        raise InputError(f"over the size limit of {MAX_BYTES // 1000} kB", source=str(path))
    return parse_response(path.read_bytes(), str(path))


def parse_response(raw: bytes, source: str) -> dict:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", source=source) from None
    except RecursionError:
        raise InputError("JSON nested too deep", source=source) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", source=source,
                         place=f"line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict) or data.get("resourceType") != "QuestionnaireResponse":
        raise InputError("not a FHIR QuestionnaireResponse (resourceType)", source=source)
    from ..engines.fhir import validate_resource

    problem = validate_resource(data)
    if problem is not None:
        raise InputError(problem.message, source=source, place=problem.place())
    return data


def redecide(reasoner, case: Case, earlier: Determination, response: dict,
             source: str) -> tuple[Revision, Case]:
    """Merge `response` (a checked QuestionnaireResponse from `source`) into `case` and decide
    again under the policy version of `earlier`, the pended determination it answers. Returns
    the new determination and the merged case (for its record)."""
    kb = reasoner.kb
    if earlier.outcome != "pended":
        raise InputError(f"the determination of {case.source} under {earlier.policy.id} is "
                         f"{earlier.outcome}, not pended: there is no questionnaire to answer",
                         source=source)
    questionnaire = build_questionnaire(earlier, kb)
    _check_target(response, questionnaire, source)
    digest = hashlib.sha256(json.dumps(response, sort_keys=True).encode()).hexdigest()[:16]
    doc = URIRef(f"{CASE_BASE}{quote(case.id, safe='')}/questionnaire-response/{digest}")
    authored = _authored(response, source)
    answers = _answers(response, questionnaire, kb, source, case, authored)
    merged = Graph()
    merged += case.graph
    merged += _source_document(doc, response, questionnaire, authored)
    decided = build_case_graph(kb, case).data if answers else Graph()
    for question, values in answers:
        merged += _record(question, values, case, doc, kb, source, decided)
    revised = Case(case.id, merged, case.node, case.request, case.source, case.kind)
    from ..guard import check_case

    check_case(kb, Case(case.id, merged, case.node, case.request, source, case.kind))
    new = reasoner.determine(revised, earlier.policy.id, earlier.policy.version)
    state = {f.name: getattr(new, f.name) for f in fields(Determination)}
    state["iri"] = f"{earlier.iri}/answers-{digest}"
    author = _author(response)
    return Revision(**state, revision_of=earlier.iri, answers={
        "questionnaire": canonical(questionnaire),
        "response": str(doc),
        "authored": authored.isoformat() if authored else None,
        "author": author,
        "answered": sorted(q.link_id for q, _ in answers),
    }), revised


def redecide_file(reasoner, case: Case, decided: list[Determination],
                  path: str) -> tuple[list[Determination], Case]:
    """`reasoner determine CASE --answers QR.json`: the one determination of `decided`
    (pended) re-decided with the answers of the file `path`."""
    if len(decided) != 1:
        raise InputError(f"{len(decided)} policies decide this request; name the one whose "
                         f"questionnaire was answered (--policy)", source=path)
    revision, merged = redecide(reasoner, case, decided[0], read_response(path), path)
    return [revision], merged


def revision_heading(d: Determination) -> str:
    """The line a letter of a re-decided determination starts with."""
    if not isinstance(d, Revision) or not d.answers:
        return ""
    authored = d.answers.get("authored") or "an unknown date"
    return (f"Re-decided with the answers of the questionnaire {d.answers['questionnaire']} "
            f"(answered on {authored}); revises {d.revision_of}\n\n")


# ---------------------------------------------------------------------------- checks


def _check_target(response: dict, questionnaire: dict, source: str) -> None:
    asked = response.get("questionnaire")
    want = canonical(questionnaire)
    url, _, version = (asked or "").partition("|")
    if url != questionnaire["url"] or (version and version != questionnaire["version"]):
        raise InputError(f"answers questionnaire {asked or '(none named)'}, but the pended "
                         f"determination asks {want}", source=source,
                         place="QuestionnaireResponse.questionnaire")
    status = response.get("status")
    if status not in READ_STATUSES:
        raise InputError(f"status {status!r}: only {', '.join(READ_STATUSES)} responses are "
                         f"read", source=source, place="QuestionnaireResponse.status")


def _authored(response: dict, source: str) -> date | None:
    text = response.get("authored")
    if not text:
        return None
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        raise InputError(f"authored {text!r} is not a date", source=source,
                         place="QuestionnaireResponse.authored") from None


def _author(response: dict) -> str | None:
    author = response.get("author") or {}
    return author.get("display") or author.get("reference")


def _answers(response, questionnaire, kb, source, case, authored) -> list[tuple[Question, dict]]:
    """Each answered question with its parts' values (RDF terms), in questionnaire order."""
    book = question_book(kb)
    asked = {i["linkId"]: i for i in questionnaire["item"]}
    born = _date(case.graph.value(case.graph.value(case.node, NR.patient), NR.birthDate))
    out: dict[str, tuple[Question, dict]] = {}
    for n, item in enumerate(response.get("item") or []):
        link = item.get("linkId")
        place = f"item {link!r}"
        if link not in asked:
            raise InputError("unknown linkId: not an item of the questionnaire", source=source,
                             place=place)
        if link in out:
            raise InputError("answered twice", source=source, place=place)
        question = book.questions.get(link)
        if question is None:
            raise InputError("a document to send, not a question: attach the document to the "
                             "request instead", source=source, place=place)
        values = _question_values(question, item, source, born, authored)
        if values:
            out[link] = (question, values)
    order = [i["linkId"] for i in questionnaire["item"]]
    return [out[k] for k in order if k in out]


def _question_values(question: Question, item: dict, source, born, authored) -> dict:
    if len(question.parts) == 1:
        if item.get("item"):
            raise InputError("answers nested items, but the item is not a group", source=source,
                             place=f"item {question.link_id!r}")
        value = _part_value(question.parts[0], item, question.link_id, source, born, authored)
        return {} if value is None else {question.parts[0].name: value}
    if item.get("answer"):
        raise InputError("a group item takes answers in its child items", source=source,
                         place=f"item {question.link_id!r}")
    parts = {f"{question.link_id}.{p.name}": p for p in question.parts}
    values = {}
    for child in item.get("item") or []:
        link = child.get("linkId")
        if link not in parts:
            raise InputError("unknown linkId: not an item of the questionnaire", source=source,
                             place=f"item {link!r}")
        value = _part_value(parts[link], child, link, source, born, authored)
        if value is not None:
            values[parts[link].name] = value
    if values and len(values) < len(parts):
        missing = ", ".join(k for k, p in parts.items() if p.name not in values)
        raise InputError(f"partly answered: {missing} unanswered (a fact needs every part)",
                         source=source, place=f"item {question.link_id!r}")
    return values


def _part_value(part: Part, item: dict, link: str, source, born, authored):
    answers = item.get("answer") or []
    place = f"item {link!r}"
    if not answers:
        return None
    if len(answers) > 1:
        raise InputError(f"{len(answers)} answers; the item takes one", source=source, place=place)
    answer = answers[0]
    element = ANSWER_ELEMENT[part.item_type]
    given = [k for k in answer if k.startswith("value")]
    accepted = (element, "valueInteger") if element == "valueDecimal" else (element,)
    if not given or given[0] not in accepted:
        raise InputError(f"a {part.item_type} answer ({element}) is required, not "
                         f"{given[0] if given else 'none'}", source=source, place=place)
    value = answer[given[0]]
    if part.item_type == "choice":
        for option in part.options:
            if value.get("system") == option.system and value.get("code") == option.code:
                return option.concept
        raise InputError(f"{value.get('system')}|{value.get('code')} is not one of the item's "
                         f"answer options", source=source, place=place)
    if part.item_type == "date":
        day = _date(value)
        if day is None:
            raise InputError(f"{value!r} is not a full date (YYYY-MM-DD)", source=source,
                             place=place)
        if authored and day > authored:
            raise InputError(f"{day} is after the day the questionnaire was answered "
                             f"({authored}): impossible", source=source, place=place)
        if born and day < born:
            raise InputError(f"{day} is before the patient's birth ({born}): impossible",
                             source=source, place=place)
        return Literal(day.isoformat(), datatype=XSD.date)
    unit = None
    if part.item_type == "quantity":
        unit = next((u for u in part.units
                     if value.get("system") == u.system and value.get("code") == u.code), None)
        if unit is None:
            raise InputError(f"unit {value.get('system')}|{value.get('code')} is not one of "
                             f"the item's units", source=source, place=place)
        value = value.get("value")
    if part.item_type in ("decimal", "integer", "quantity"):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise InputError(f"{value!r} is not a number", source=source, place=place) from None
        if (part.minimum is not None and number < part.minimum) or \
                (part.maximum is not None and number > part.maximum):
            bounds = f"{part.minimum if part.minimum is not None else ''}.." \
                     f"{part.maximum if part.maximum is not None else ''}"
            raise InputError(f"{value} is outside the possible range {bounds}", source=source,
                             place=place)
        if part.item_type == "integer":
            return Literal(int(number), datatype=XSD.integer)
        if unit is not None:  # a quantity: its value and its unit concept (bound as <name>Unit)
            return Literal(number, datatype=XSD.decimal), unit.concept
        return Literal(number, datatype=XSD.decimal)
    if part.item_type == "boolean":
        return Literal(bool(value), datatype=XSD.boolean)
    return Literal(str(value))


def _date(value) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)) if len(str(value)) == 10 else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------- facts


def _source_document(doc: URIRef, response: dict, questionnaire: dict, authored) -> Graph:
    g = Graph()
    g.add((doc, RDF.type, NR.SourceDocument))
    on = f" on {authored.isoformat()}" if authored else " (date not given)"
    g.add((doc, DCTERMS.title, Literal(f"answered in the questionnaire{on}")))
    # no dcterms:date: the title says the day, and a fact's source line would say it twice
    g.add((doc, DCTERMS.source, Literal(canonical(questionnaire))))
    author = _author(response)
    if author:
        agent = URIRef(f"{doc}#author")
        g.add((doc, PROV.wasAttributedTo, agent))
        g.add((agent, RDF.type, PROV.Agent))
        g.add((agent, RDFS.label, Literal(author)))
    return g


_PREFIX_LINES = "\n".join(f"PREFIX {k}: <{v}>" for k, v in sorted(PREFIXES.items()))


def _record(question: Question, values: dict, case: Case, doc: URIRef, kb, source,
            decided: Graph) -> Graph:
    """The case facts `question`'s update adds for `values`. The update's WHERE sees the case
    as it was decided (`decided`: facts, knowledge about their concepts, what the rules
    inferred) plus the description of every concept answered; it adds case triples only."""
    flat = {}
    for name, value in values.items():
        if isinstance(value, tuple):
            flat[name], flat[f"{name}Unit"] = value
        else:
            flat[name] = value
    values = flat
    scratch = Graph()
    scratch += decided
    for value in values.values():
        if isinstance(value, URIRef):
            for t in kb.concept_description(value):
                scratch.add(t)
    before = set(scratch)
    bindings = {
        "fact": URIRef(f"{doc}/{question.link_id}"), "source": doc,
        "element": Literal(f"QuestionnaireResponse.item[linkId={question.link_id}]"),
        "case": case.node, "request": case.request,
        "patient": case.graph.value(case.node, NR.patient),
    }
    bindings.update(values)
    scratch.update(_PREFIX_LINES + "\n" + question.update, initBindings=bindings)
    added = Graph()
    for t in set(scratch) - before:
        added.add(t)
    if not len(added):
        raise InputError("the answer has nothing in this case to attach to (see the item's "
                         "question in docs/dtr.md)", source=source,
                         place=f"item {question.link_id!r}")
    return added
