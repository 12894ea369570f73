"""A FHIR R4 `Questionnaire` for a pended determination (Da Vinci DTR; docs/dtr.md).

One item per missing FACT, not per criterion text: every missing condition that held names the
documentation questions that answer it (`nr:answersCondition`, knowledge/questionnaire/); a
question needed by several criteria (the twins ESI-CI-4 and ESI-LIM-1) is one item listing
every criterion it serves. A missing condition no question answers (an imaging report, a care
plan) becomes a `display` item saying what to send and where it is usually documented.

Deterministic: items are ordered by `nr:questionOrder` then linkId, criteria naturally, options
by system and code; the canonical URL is the policy's questionnaire URL plus a digest of what
is asked, its version the policy version, so that the same missing facts under the same policy
version give byte-identical JSON (`dumps`).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from rdflib import URIRef

from ..errors import InputError
from ..model import Determination, reference_sort_key
from ..vocab import NR
from .questions import Part, Question, question_book

QUESTIONNAIRE_BASE = "https://w3id.org/necessity/questionnaire/"
#: the criteria (reference ids) an item serves; a project extension (docs/dtr.md)
CRITERION_EXTENSION = "https://w3id.org/necessity/fhir/StructureDefinition/criterion"
#: FHIR R4 core extensions (http://hl7.org/fhir/R4/extension-*.html)
UNIT_OPTION = "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"


class NotPended(InputError):
    """The determination is not pended: nothing is missing, so no questionnaire is needed."""


def missing_conditions(d: Determination) -> list[tuple[str, str, URIRef]]:
    """(criterion ref, criterion IRI, missing condition shape) for every missing criterion."""
    out = []
    for c in d.criteria:
        if c.status == "missing":
            out.extend((c.ref, c.id, URIRef(h.shape)) for h in c.conditions if h.kind == "missing")
    return out


def plan(d: Determination, kb) -> tuple[list[tuple[Question, list[str]]], list[dict]]:
    """The questions to ask (each with the criteria it serves) and the documents to send."""
    if d.outcome != "pended":
        raise NotPended(f"the determination is {d.outcome}, not pended: nothing is missing, "
                        f"no questionnaire is needed", source=d.case_id)
    book = question_book(kb)
    pack = kb.pack(d.policy.id)
    asked: dict[str, tuple[Question, set[str]]] = {}
    send: dict[str, dict] = {}
    for ref, _criterion, shape in missing_conditions(d):
        questions = book.for_condition(shape)
        for q in questions:
            asked.setdefault(q.link_id, (q, set()))[1].add(ref)
        if not questions:
            what = str(pack.graph.value(shape, NR.requestedInformation) or "")
            where = str(pack.graph.value(shape, NR.documentationLocation) or "")
            key = what or str(shape)
            entry = send.setdefault(key, {"what": what, "where": where, "refs": set(),
                                          "shapes": set()})
            entry["refs"].add(ref)
            entry["shapes"].add(str(shape).rstrip("/").rsplit("/", 1)[-1])
    questions = [(q, _refs(refs)) for q, refs in
                 sorted(asked.values(), key=lambda t: (t[0].order, t[0].link_id))]
    documents = []
    for entry in send.values():
        entry["link_id"] = "send-" + min(entry.pop("shapes"))
        entry["refs"] = _refs(entry["refs"])
        documents.append(entry)
    documents.sort(key=lambda e: e["link_id"])
    return questions, documents


def build_questionnaire(d: Determination, kb) -> dict:
    """The Questionnaire (a dict of FHIR R4 JSON) for the pended determination `d`."""
    questions, documents = plan(d, kb)
    items = [_question_item(q, refs) for q, refs in questions]
    items += [{"linkId": doc["link_id"], "type": "display",
               "text": f"Send: {doc['what']}" + (f" Usually documented in: {doc['where']}"
                                                 if doc["where"] else ""),
               "extension": _criteria(doc["refs"])} for doc in documents]
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:16]
    policy = d.policy
    qid = f"{policy.id}-{digest}"[:64]
    return {
        "resourceType": "Questionnaire",
        "id": qid,
        "url": f"{QUESTIONNAIRE_BASE}{quote(policy.id, safe='')}/{digest}",
        "version": policy.version,
        "name": "DocumentationNeeded",
        "title": f"Documentation needed: {policy.title}, version {policy.version}",
        "status": "active",
        "subjectType": ["Patient"],
        "description": ("The facts a pended prior-authorization determination lacks, one item "
                        "per fact; display items name documents to send."),
        "item": items,
    }


def canonical(questionnaire: dict) -> str:
    """`url|version`, as QuestionnaireResponse.questionnaire names it."""
    return f"{questionnaire['url']}|{questionnaire['version']}"


def dumps(resource: dict) -> str:
    """Deterministic JSON text of a resource."""
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def _refs(refs) -> list[str]:
    return sorted(refs, key=reference_sort_key)


def _criteria(refs: list[str]) -> list[dict]:
    return [{"url": CRITERION_EXTENSION, "valueString": ref} for ref in refs]


def _question_item(q: Question, refs: list[str]) -> dict:
    if len(q.parts) == 1:
        item = _part_item(q.link_id, q.parts[0])
        item["text"] = q.text
    else:
        item = {"linkId": q.link_id, "text": q.text, "type": "group", "required": True,
                "item": [_part_item(f"{q.link_id}.{p.name}", p) for p in q.parts]}
    item["extension"] = _criteria(refs) + item.get("extension", [])
    return dict(sorted(item.items(), key=lambda kv: _KEY_ORDER.get(kv[0], 99)))


_KEY_ORDER = {"extension": 0, "linkId": 1, "text": 2, "type": 3, "required": 4,
              "answerOption": 5, "item": 6}


def _part_item(link_id: str, part: Part) -> dict:
    item: dict = {"linkId": link_id, "text": part.text, "type": part.item_type, "required": True}
    ext = []
    if part.units:
        ext += [{"url": UNIT_OPTION, "valueCoding": u.coding()} for u in part.units]
    kind = "valueInteger" if part.item_type == "integer" else "valueDecimal"
    for url, bound in ((MIN_VALUE, part.minimum), (MAX_VALUE, part.maximum)):
        if bound is not None and part.item_type in ("integer", "decimal", "quantity"):
            ext.append({"url": url, kind: int(bound) if kind == "valueInteger" else float(bound)})
    if ext:
        item["extension"] = ext
    if part.options:
        item["answerOption"] = [{"valueCoding": o.coding()} for o in part.options]
    return item
