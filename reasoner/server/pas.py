"""Da Vinci PAS (Prior Authorization Support, STU 2): ``POST /fhir/Claim/$submit`` and
``POST /fhir/Claim/$inquire``.

- ``$submit`` takes a PAS request Bundle (or a Parameters with it as ``resource``), decides it
  under every pack covering its service (the intake reads it as `reasoner determine` reads the
  same file) and stores the records. The answer is a PAS response Bundle whose first entry is a
  ClaimResponse: per decided item the PAS ``extension-reviewAction`` with its
  ``extension-reviewActionCode`` in X12 306 (approved A1, pended A4, denied A3:
  ``service-codes.json``), the reasons and the decisive criteria as ``processNote``s, the
  determination ids as identifiers (and, when approved, as ``preAuthRef``). A denial is said to
  be a recommendation for clinician review.
- The same Claim identifier (system and value) submitted again answers the stored decision:
  the case id is a digest of the identifier, so the record is found, not decided again.
- ``$inquire`` takes a PAS inquiry Bundle and answers the stored decision of its Claim's
  identifier (an inquiry response Bundle), or a 404 OperationOutcome when there is none.

Both answers are built from the stored records (`decide.from_record`), so a first answer,
a resubmission and an inquiry say the same. Every answer is checked against the FHIR R4 models
(`reasoner.engines.fhir`) before it leaves.
"""

from __future__ import annotations

import datetime as dt
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..engines import fhir as fhir_engine
from ..intake.pas import refuse_non_requests
from .auth import require_bearer
from .decide import TABLE, NotCovered, Verdicts, case_id_for, combined
from .service import FHIR_JSON, BadRequest, Service, guarded, log

PAS = TABLE["pas"]
INQUIRY_RESPONSE_PROFILE = ("http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                            "profile-pas-inquiry-response-bundle")
INQUIRY_CLAIMRESPONSE_PROFILE = ("http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                                 "profile-claiminquiryresponse")
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"


def unwrap(data: dict) -> dict:
    """The Bundle of a request: the body itself, or the `resource` parameter of a Parameters
    (FHIR operations take a resource either way)."""
    if data.get("resourceType") == "Parameters":
        for p in data.get("parameter") or []:
            if isinstance(p, dict) and isinstance(p.get("resource"), dict):
                return p["resource"]
        raise BadRequest(400, "Parameters without a resource parameter (the Bundle)")
    if data.get("resourceType") != "Bundle":
        raise BadRequest(400, f"send a PAS Bundle, not {data.get('resourceType')!r}")
    return data


def the_claim(bundle: dict, use: str | None = "preauthorization") -> dict:
    claims = [e.get("resource") for e in bundle.get("entry") or []
              if isinstance(e, dict) and isinstance(e.get("resource"), dict)
              and e["resource"].get("resourceType") == "Claim"
              and (use is None or e["resource"].get("use") == use)]
    if not claims:
        raise BadRequest(400, "the Bundle holds no Claim with use preauthorization"
                         if use else "the Bundle holds no Claim")
    return claims[0]


def claim_key(claim: dict) -> tuple[str, dict]:
    """(system|value, identifier) of the Claim's first identifier with a value."""
    for ident in claim.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("value"):
            return f"{ident.get('system', '')}|{ident['value']}", ident
    raise BadRequest(400, "the Claim has no identifier: $submit needs one to recognise a "
                          "resubmission, $inquire to find the decision")


def _referenced(bundle: dict, claim: dict) -> list[dict]:
    """The request's entries the ClaimResponse refers to (patient, insurer, requestor)."""
    refs = {(claim.get(k) or {}).get("reference") for k in ("patient", "insurer", "provider")}
    out = []
    for e in bundle.get("entry") or []:
        r = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(r, dict):
            continue
        names = {e.get("fullUrl"), f"{r.get('resourceType')}/{r.get('id')}"}
        if any(ref and (ref in names or any(n and n.endswith("/" + ref) for n in names))
               for ref in refs):
            out.append(e)
    return out


def _items(claim: dict, decisions: list[Verdicts]) -> list[int]:
    """The sequences of the Claim items decided: those whose productOrService carries the
    decided service code; else the first item."""
    codes = {v.service_code for v in decisions if v.service_code}
    items = [i for i in claim.get("item") or [] if isinstance(i, dict)]
    picked = [i.get("sequence") for i in items
              if codes & {c.get("code") for c in (i.get("productOrService") or {}).get("coding")
                          or [] if isinstance(c, dict)}]
    if not picked and items:
        picked = [items[0].get("sequence")]
    return [s for s in picked if isinstance(s, int)] or [1]


def notes(decisions: list[Verdicts], outcome: str) -> list[str]:
    out = []
    if outcome == "denied":
        out.append("Recommendation for clinician review, not a final denial: a clinician "
                   "confirms every denial before it is sent.")
    for v in decisions:
        out.append(f"Determination {v.iri}: {v.outcome} under {v.policy_id} {v.version}.")
        for c in v.decisive():
            out.append(f"{v.policy_id} {c.ref} ({c.status}): {c.label}. {c.message}")
        if v.notice:
            out.append(v.notice)
    return out


def claim_response(claim: dict, decisions: list[Verdicts], case_id: str, now: str,
                   profile: str = PAS["claimresponse_profile"]) -> dict:
    outcome = combined([v.outcome for v in decisions])
    code = PAS["outcomes"][outcome]
    action = [{"url": PAS["review_action_code"], "valueCodeableConcept": {"coding": [
        {"system": PAS["x12_306"], "code": code["code"], "display": code["display"]}]}}]
    if outcome == "approved":
        action.insert(0, {"url": "number", "valueString": case_id})
    adjudication = [{"extension": [{"url": PAS["review_action"], "extension": action}],
                     "category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]}}]
    _, ident = claim_key(claim)
    cr = {
        "resourceType": "ClaimResponse", "id": case_id,
        "meta": {"profile": [profile]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": v.iri} for v in decisions],
        "status": "active",
        "type": claim.get("type") or {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/claim-type",
            "code": "professional"}]},
        "use": "preauthorization",
        "patient": claim.get("patient"),
        "created": now,
        "insurer": claim.get("insurer"),
        "requestor": claim.get("provider"),
        "request": {"identifier": {k: ident[k] for k in ("system", "value") if k in ident}},
        "outcome": code["outcome"],
        "disposition": f"{outcome}: " + "; ".join(f"{v.policy_id} {v.outcome}"
                                                  for v in decisions),
        "item": [{"itemSequence": seq, "adjudication": adjudication}
                 for seq in _items(claim, decisions)],
        "processNote": [{"number": n, "type": "display", "text": text}
                        for n, text in enumerate(notes(decisions, outcome), 1)],
    }
    if outcome == "approved":
        cr["preAuthRef"] = case_id
    return {k: v for k, v in cr.items() if v is not None}


def response_bundle(request_bundle: dict, claim: dict, decisions: list[Verdicts], case_id: str,
                    inquiry: bool = False) -> dict:
    """The PAS response Bundle (or inquiry response Bundle) around the ClaimResponse."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    profile = INQUIRY_RESPONSE_PROFILE if inquiry else PAS["response_bundle_profile"]
    cr = claim_response(claim, decisions, case_id, now, INQUIRY_CLAIMRESPONSE_PROFILE
                        if inquiry else PAS["claimresponse_profile"])
    bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
              "meta": {"profile": [profile]}, "type": "collection", "timestamp": now,
              "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, case_id)}",
                         "resource": cr}, *_referenced(request_bundle, claim)]}
    problem = fhir_engine.validate_resource(bundle)
    if problem is not None:
        log.error("PAS response failed the FHIR R4 check: %s", problem.element)
        raise BadRequest(500, "the response did not pass the FHIR R4 check", "exception")
    return bundle


def routes(svc: Service) -> list[Route]:
    async def submit(request: Request):
        require_bearer(request)
        bundle = unwrap(await svc.json_body(request))
        refuse_non_requests(bundle, "request")
        claim = the_claim(bundle)
        key, _ = claim_key(claim)
        case_id = case_id_for("pas", key)

        def work(wait: float):
            stored = svc.decider.stored(case_id, wait)
            if stored:
                return stored, False
            svc.decider.decide(bundle, case_id, wait)
            return svc.decider.stored(case_id, wait), True

        try:
            decisions, new = await svc.run(work)
        except NotCovered as exc:
            raise BadRequest(422, f"no policy of this payer decides the requested service "
                                  f"({exc}); nothing was stored", "not-supported") from None
        body = response_bundle(bundle, claim, decisions, case_id)
        return JSONResponse(body, status_code=201 if new else 200, media_type=FHIR_JSON)

    async def inquire(request: Request):
        require_bearer(request)
        bundle = unwrap(await svc.json_body(request))
        claim = the_claim(bundle, use=None)
        key, _ = claim_key(claim)
        case_id = case_id_for("pas", key)
        decisions = await svc.run(lambda wait: svc.decider.stored(case_id, wait))
        if not decisions:
            raise BadRequest(404, "no decision is stored for this Claim identifier",
                             "not-found")
        body = response_bundle(bundle, claim, decisions, case_id, inquiry=True)
        return JSONResponse(body, media_type=FHIR_JSON)

    async def submit_route(request: Request):
        return await guarded(submit, request)

    async def inquire_route(request: Request):
        return await guarded(inquire, request)

    return [Route("/fhir/Claim/$submit", submit_route, methods=["POST"]),
            Route("/fhir/Claim/$inquire", inquire_route, methods=["POST"])]
