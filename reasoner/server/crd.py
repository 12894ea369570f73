"""Da Vinci CRD over CDS Hooks 2.0: discovery and the order-sign / order-select services.

- ``GET /cds-services`` (CDS Hooks 2.0 "Discovery"): one service per hook, with prefetch
  templates for every resource type the intake reads (derived from the rules of
  ``reasoner/intake/fhir-mapping.json``, plus the patient's active Coverage, which CRD's
  coverage-information extension references).
- ``POST /cds-services/{id}`` (CDS Hooks 2.0 "Calling a CDS Service"; CRD "Coverage
  Information" response type): for each draft order (order-select: each selected order) of a
  service some pack covers, the order is decided under every covering pack and answered with

  * a system action (``type`` update) returning the order with the CRD
    ``ext-coverage-information`` extension (covered / pa-needed / doc-needed / info-needed,
    the reason naming the missing criteria and where in the chart they go, the assertion id);
  * a card (summary under 140 characters, indicator, source, a link to the determination page
    of each record). A denial is said to be a recommendation for clinician review.

  An order for a service no pack covers gets neither. A request without prefetch is decided
  with what it carries (every record fact is missing, so the order pends) and the card names
  the prefetch keys to send. The codes come from ``service-codes.json``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import urllib.parse
import uuid
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import InputError
from .auth import invoked_url
from .decide import TABLE, NotCovered, Verdicts, case_id_for, combined
from .service import BadRequest, Service, guarded

HOOKS = ("order-sign", "order-select")
SERVICE_IDS = {f"necessity-{hook}": hook for hook in HOOKS}
MAPPING = Path(__file__).resolve().parent.parent / "intake" / "fhir-mapping.json"
CRD = TABLE["crd"]
SUMMARY_MAX = 140  # CDS Hooks 2.0 Card.summary: "<140-character summary"


@functools.lru_cache(maxsize=1)
def mapping_table() -> dict:
    return json.loads(MAPPING.read_text("utf-8"))


@functools.lru_cache(maxsize=1)
def prefetch_templates() -> dict[str, str]:
    """Prefetch key -> FHIR query, one per resource type the mapping table's rules read
    (CDS Hooks 2.0 "Prefetch Template"), the patient read by id."""
    table = mapping_table()
    types = sorted({r["resourceType"] for r in table["rules"]} | {"Coverage"})
    out = {}
    for rtype in types:
        if rtype == table["patient"]["resourceType"]:
            out["patient"] = f"{rtype}/{{{{context.patientId}}}}"
            continue
        key = rtype[0].lower() + rtype[1:] + "s"
        query = f"{rtype}?patient={{{{context.patientId}}}}"
        out[key] = query + ("&status=active" if rtype == "Coverage" else "")
    return dict(sorted(out.items()))


def discovery() -> dict:
    prefetch = dict(prefetch_templates())
    return {"services": [{
        "hook": hook, "id": sid,
        "title": f"Coverage requirements ({hook})",
        "description": ("Da Vinci CRD coverage information for draft orders of the services "
                        "this payer's policy packs cover: is prior authorization needed, is "
                        "documentation missing, with a link to the determination."),
        "prefetch": prefetch,
        "usageRequirements": ("Send the prefetch (the service fetches nothing); sign the "
                              "request JWT with a key registered with the payer."),
    } for sid, hook in SERVICE_IDS.items()]}


def _codes(value) -> set[str]:
    """Every `code` string under a FHIR element (codings and extensions alike)."""
    out, todo = set(), [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            if isinstance(v.get("code"), str):
                out.add(v["code"])
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return out


def _orders(data: dict, hook: str) -> list[tuple[str | None, dict]]:
    """(fullUrl, order) for the draft orders the hook is about: every entry of
    `context.draftOrders`; for order-select only those named in `context.selections` (when it
    names any)."""
    context = data["context"]
    draft = context["draftOrders"]
    if isinstance(draft, dict) and draft.get("resourceType") == "Bundle":
        found = [(e.get("fullUrl"), e.get("resource")) for e in draft.get("entry") or []
                 if isinstance(e, dict)]
    else:
        found = [(None, r) for r in (draft if isinstance(draft, list) else [draft])]
    found = [(u if isinstance(u, str) else None, r) for u, r in found
             if isinstance(r, dict) and r.get("resourceType")]
    selections = context.get("selections")
    if hook == "order-select" and isinstance(selections, list) and selections:
        chosen = {s for s in selections if isinstance(s, str)}
        found = [(u, r) for u, r in found if f"{r['resourceType']}/{r.get('id')}" in chosen]
    return found


def _prefetch_missing(data: dict) -> list[str]:
    """The discovery's prefetch keys the request did not fill (null counts as not filled)."""
    given = data.get("prefetch") if isinstance(data.get("prefetch"), dict) else {}
    return [k for k in prefetch_templates() if given.get(k) in (None, {}, [])]


def _coverage_ref(data: dict) -> dict | None:
    """A reference to the patient's Coverage from the prefetch, when there is one."""
    for value in (data.get("prefetch") or {}).values():
        items = [value] if not (isinstance(value, dict) and value.get("resourceType") == "Bundle") \
            else [e.get("resource") for e in value.get("entry") or [] if isinstance(e, dict)]
        for r in items:
            if isinstance(r, dict) and r.get("resourceType") == "Coverage" and r.get("id"):
                return {"reference": f"Coverage/{r['id']}"}
    return None


def _missing_text(decisions: list[Verdicts]) -> list[str]:
    seen, out = set(), []
    for v in decisions:
        for m in v.missing:
            line = f"{m['what']} ({m['where']})"
            if line not in seen:
                seen.add(line)
                out.append(line)
    return out


def _unmet_text(decisions: list[Verdicts]) -> list[str]:
    return [f"{v.policy_id} {c.ref}: {c.message}" for v in decisions for c in v.criteria
            if c.status == "unmet"]


def coverage_extension(decisions: list[Verdicts], outcome: str, assertion: str,
                       coverage: dict | None, today: str) -> dict:
    """The CRD ext-coverage-information extension for one order."""
    codes = CRD["outcomes"][outcome]
    ext = []
    if coverage:
        ext.append({"url": "coverage", "valueReference": coverage})
    for name in ("covered", "pa-needed", "doc-needed", "doc-purpose", "info-needed"):
        if name in codes:
            ext.append({"url": name, "valueCode": codes[name]})
    if outcome == "pended":
        reason = "Missing: " + "; ".join(_missing_text(decisions))
    elif outcome == "denied":
        reason = ("Recommendation for clinician review, not a final denial. Criteria not met: "
                  + "; ".join(_unmet_text(decisions)))
    else:
        reason = "Coverage criteria met under " + ", ".join(v.policy_id for v in decisions)
    ext.append({"url": "reason", "valueCodeableConcept": {"text": reason[:1000]}})
    if codes.get("pa-needed") == "satisfied":
        ext.append({"url": "satisfied-pa-id", "valueString": assertion})
    ext.append({"url": "date", "valueDate": today})
    ext.append({"url": "coverage-assertion-id", "valueString": assertion})
    return {"url": CRD["extension"], "extension": ext}


def summary(outcome: str, service: str, decisions: list[Verdicts]) -> str:
    missing = len(_missing_text(decisions))
    text = {
        "approved": f"{service}: coverage criteria met; prior authorization satisfied",
        "pended": f"{service}: prior authorization needed; {missing} item(s) of documentation "
                  "missing",
        "denied": f"{service}: criteria not met. Recommendation for clinician review, not a "
                  "final denial",
    }[outcome]
    return text if len(text) < SUMMARY_MAX else text[:SUMMARY_MAX - 2] + "…"


def card(decisions: list[Verdicts], outcome: str, service: str, base: str, missing_keys,
         card_id: str) -> dict:
    lines = []
    for v in decisions:
        lines.append(f"**{v.title}** ({v.policy_id} {v.version}): {v.outcome}")
    if outcome == "pended":
        lines.append("Documentation to send (what, and where in the chart):\n"
                     + "\n".join(f"- {m}" for m in _missing_text(decisions)))
    if outcome == "denied":
        lines.append("This is a recommendation for clinician review: a clinician confirms "
                     "every denial. Criteria not met:\n"
                     + "\n".join(f"- {m}" for m in _unmet_text(decisions)))
    if missing_keys:
        lines.append("The request carried no prefetch for: " + ", ".join(missing_keys)
                     + ". Send them (discovery lists the queries) to be decided on the chart.")
    links = [{"label": f"Determination under {v.policy_id}", "type": "absolute",
              "url": f"{base}/determination?iri={urllib.parse.quote(v.iri, safe='')}"}
             for v in decisions]
    return {"uuid": card_id, "summary": summary(outcome, service, decisions),
            "detail": "\n\n".join(lines), "indicator": CRD["outcomes"][outcome]["indicator"],
            "source": {"label": "Necessity Reasoner (payer coverage requirements)"},
            "links": links}


def covered_codes(reasoner) -> set[str]:
    """The codes (notation only) of the services the deciding packs cover."""
    return {reasoner.kb.code_text(s).split(" (")[0] for p in reasoner.kb.packs.values()
            if not p.illustrative_only for s in p.services}


def answer(svc: Service, data: dict, hook: str, base: str):
    """The hook's cards and system actions, deciding in this (worker) thread; `wait` is
    supplied by `Service.run`."""

    def run(wait: float) -> dict:
        cards, actions = [], []
        missing_keys = _prefetch_missing(data)
        coverage = _coverage_ref(data)
        today = dt.datetime.now(dt.timezone.utc).date().isoformat()
        index_type = mapping_table()["index_request"]["resourceType"]
        for full_url, order in _orders(data, hook):
            if order.get("resourceType") != index_type:
                continue  # the packs decide requests of the index request's type only
            single = {**data, "context": {**data["context"], "draftOrders": {
                "resourceType": "Bundle", "type": "collection", "entry": [
                    {"fullUrl": full_url or f"{order['resourceType']}/{order.get('id', 'draft')}",
                     "resource": order}]}}}
            key = json.dumps({"order": order, "prefetch": data.get("prefetch"),
                              "patient": data["context"].get("patientId")},
                             sort_keys=True, separators=(",", ":"))
            case_id = case_id_for("crd", key)
            try:
                decisions = svc.decider.decide(single, case_id, wait, cache_key=case_id)
            except NotCovered:
                continue
            except InputError:
                if not (_codes(order.get("code")) & covered_codes(svc.decider.pages.reasoner())):
                    continue  # unreadable, and not a service any pack covers: no card
                raise
            outcome = combined([v.outcome for v in decisions])
            service = decisions[0].service_code or "order"
            actions.append({"type": "update",
                            "description": f"Coverage information for {service} ({outcome})",
                            "resource": {**copy.deepcopy(order), "extension": [
                                *(order.get("extension") or []),
                                coverage_extension(decisions, outcome, case_id, coverage,
                                                   today)]}})
            card_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/{hook}"))
            cards.append(card(decisions, outcome, service, base, missing_keys, card_id))
        return {"cards": cards, "systemActions": actions}

    return run


def routes(svc: Service) -> list[Route]:
    async def list_services(request: Request):
        return JSONResponse(discovery())

    async def call(request: Request):
        sid = request.path_params["service_id"]
        if sid not in SERVICE_IDS:
            raise BadRequest(404, f"no CDS service {sid!r} (see GET /cds-services)", "not-found")
        svc.auth.require_cds(request, invoked_url(request))
        data = await svc.json_body(request)
        hook = SERVICE_IDS[sid]
        if data.get("hook") != hook:
            raise BadRequest(400, f"this service answers the {hook} hook, not "
                                  f"{data.get('hook')!r}")
        context = data.get("context")
        if not isinstance(context, dict) or context.get("draftOrders") is None:
            raise BadRequest(400, "CDS Hooks request without context.draftOrders")
        if not isinstance(data.get("prefetch", {}), (dict, type(None))):
            raise BadRequest(400, "prefetch is not an object")
        base = (getattr(svc.settings, "public_url", None) or str(request.base_url)).rstrip("/")
        result = await svc.run(answer(svc, data, hook, base))
        return JSONResponse(result)

    async def wrapped_call(request: Request):
        return await guarded(call, request)

    return [Route("/cds-services", list_services, methods=["GET"]),
            Route("/cds-services/{service_id}", wrapped_call, methods=["POST"])]
