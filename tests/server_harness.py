"""A real `reasoner serve` on loopback for the security tests: start/stop, a store holding a
hostile record (the `hostile_store` and `secure` fixtures), and process-tree measurements."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from rdflib import Literal, URIRef

from reasoner.store import EmbeddedStore
from reasoner.vocab import NR

from .conftest import ROOT
from .test_server import sample_cases

TOKEN = "security-token-0123456789"
MARK = "'X'+'SS'+'RAN'"          # the payloads' script sets document.title to this ...
RAN = "XSSRAN"                   # ... which reads like this only when the script ran
PAYLOAD = f"<img src=x onerror=document.title={MARK}>"   # no '/' or '#': survives IRI shortening
CARTESIAN = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }"


def start(location: Path, *options: str, host: str = "127.0.0.1"):
    """`reasoner serve` on `location` in a subprocess; (base URL, process)."""
    exe = Path(sys.executable).parent / "reasoner"
    proc = subprocess.Popen([str(exe), "serve", "--store", str(location), "--host", host,
                             "--port", "0", *options], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    lines = []
    for _ in range(3):
        line = proc.stderr.readline()
        lines.append(line)
        match = re.search(r"http://([\d.]+|\[[\d:a-f]+\]):(\d+)/", line)
        if match:
            return f"http://127.0.0.1:{match.group(2)}", proc, lines
    proc.kill()
    raise RuntimeError(f"reasoner serve did not start: {''.join(lines)}")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def hostile_store(reasoner, tmp_path_factory):
    """Real records, one of which carries script in its outcome, label, verdict and message
    (as a case could make it do before the record was the reasoner's alone)."""
    location = tmp_path_factory.mktemp("hostile") / "store"
    store = EmbeddedStore(str(location))
    bad = None
    for folder in sample_cases(3):
        case = reasoner.load_case(folder)
        d = reasoner.determine(case, "lcd-l39240")
        graph = reasoner.record_graph(d, case)
        if bad is None:
            bad = URIRef(d.iri)
            graph.set((bad, NR.outcome, Literal(PAYLOAD)))
            graph.set((bad, URIRef("http://www.w3.org/2000/01/rdf-schema#label"), Literal(PAYLOAD)))
            for result in list(graph.objects(bad, NR.hasCriterionResult))[:1]:
                graph.set((result, NR.verdict, Literal(PAYLOAD)))
                graph.set((result, NR.message, Literal(PAYLOAD)))
        store.put(d.iri, graph)
    store.close()
    for spare in ("leave", "wide"):  # the tests that start a server of their own open a copy
        shutil.copytree(location, location.parent / spare)
    return location, str(bad)


@pytest.fixture(scope="module")
def secure(hostile_store):
    location, bad = hostile_store
    url, proc, _ = start(location, "--write-token", TOKEN, "--query-timeout", "4",
                         "--query-memory-mb", "400", "--max-body-mb", "1",
                         "--idle-timeout", "2", "--max-connections", "32")
    yield url, proc, bad
    stop(proc)


def tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            pass
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its descendants' live processes."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        p = int(entry)
        while p > 1:  # is `entry` in the tree of `pid`?
            if p == pid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                break
            try:
                with open(f"/proc/{p}/stat") as fh:
                    p = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                break
    return total


def ask_count(url: str) -> int:
    r = httpx.post(f"{url}/sparql", content="SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?d { ?d a "
                   "<https://w3id.org/necessity/ontology#Determination> } }",
                   headers={"Content-Type": "application/sparql-query",
                            "Accept": "application/sparql-results+json"}, timeout=60)
    assert r.status_code == 200, r.text
    return int(r.json()["results"]["bindings"][0]["n"]["value"])




# -- the payer's service (CRD hooks, PAS): client keys, signed tokens, payload shapes ---------

ISSUER = "https://ehr.example.org"
RSA_ISSUER = "https://other-ehr.example.org"
API_TOKEN = "pas-token-0123456789abcdef"


def client_keys(folder: Path):
    """An EC P-384 client (ES384) and an RSA client (RS384), and the client file naming their
    public keys (one inline, one as a JWK Set file beside it): (ec key, rsa key, file)."""
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_pub = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec-1"}
    rsa_pub = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
               "kid": "rsa-1"}
    (folder / "other-jwks.json").write_text(json.dumps({"keys": [rsa_pub]}))
    clients = folder / "clients.json"
    clients.write_text(json.dumps({ISSUER: {"keys": [ec_pub]}, RSA_ISSUER: "other-jwks.json"}))
    return ec_key, rsa_key, clients


def sign(key, aud: str, *, iss: str = ISSUER, alg: str = "ES384", kid: str | None = "ec-1",
         exp_in: float = 60, jti: str | None = None, **claims) -> str:
    """A CDS Hooks 2.0 client JWT (iss, sub, aud, exp, iat, jti)."""
    import time
    import uuid

    import jwt

    now = int(time.time())
    body = {"iss": iss, "sub": "test-client", "aud": aud, "exp": int(now + exp_in), "iat": now,
            "jti": jti or str(uuid.uuid4()), **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def _prefetch_key(rtype: str) -> str:
    return "patient" if rtype == "Patient" else rtype[0].lower() + rtype[1:] + "s"


def as_cds(bundle: dict, hook: str, keys: list[str]) -> dict:
    """A record Bundle as a CDS Hooks request: its ServiceRequests with intent order as
    `context.draftOrders`, everything else as prefetch searchset Bundles under the keys of the
    discovery (`keys`; a key with no resource gets an empty searchset, as an EHR sends it)."""
    import uuid

    entries = bundle["entry"]
    orders = [e for e in entries if e["resource"]["resourceType"] == "ServiceRequest"
              and e["resource"].get("intent") in ("order", "original-order")]
    patient = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    prefetch = {k: {"resourceType": "Bundle", "type": "searchset", "entry": []} for k in keys}
    for e in entries:
        if e in orders:
            continue
        key = _prefetch_key(e["resource"]["resourceType"])
        prefetch.setdefault(key, {"resourceType": "Bundle", "type": "searchset", "entry": []})
        prefetch[key]["entry"].append(e)
    pid = patient["resource"].get("id") or patient["fullUrl"].rsplit(":", 1)[-1]
    return {"hookInstance": str(uuid.uuid4()), "hook": hook,
            "context": {"userId": "Practitioner/example", "patientId": pid,
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": orders}},
            "prefetch": prefetch}


def as_pas(bundle: dict, claim_value: str) -> dict:
    """A record Bundle as a Da Vinci PAS request Bundle: a preauthorization Claim first, its
    item the Bundle's ordered ServiceRequest (PAS extension-requestedService), an insurer."""
    import uuid

    entries = bundle["entry"]
    patient = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    order = next(e for e in entries if e["resource"]["resourceType"] == "ServiceRequest"
                 and e["resource"].get("intent") in ("order", "original-order"))
    org_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'insurer')}"
    claim = {
        "resourceType": "Claim", "identifier": [{"system": "urn:example:claims",
                                                 "value": claim_value}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "preauthorization", "patient": {"reference": patient["fullUrl"]},
        "created": "2026-03-30T09:00:00Z", "insurer": {"reference": org_url},
        "provider": {"reference": org_url},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                                 "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "example coverage"}}],
        "item": [{"sequence": 1, "productOrService": order["resource"]["code"], "extension": [{
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                   "extension-requestedService",
            "valueReference": {"reference": order["fullUrl"]}}]}],
    }
    return {"resourceType": "Bundle", "type": "collection",
            "meta": {"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                                 "profile-pas-request-bundle"]},
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, claim_value)}",
                       "resource": claim}, *entries,
                      {"fullUrl": org_url, "resource": {"resourceType": "Organization",
                                                         "name": "Example payer"}}]}


def record_count(url: str) -> int:
    """Stored determinations, read from the live store (the list page), not a snapshot."""
    r = httpx.get(f"{url}/determinations", timeout=60)
    assert r.status_code == 200, r.text
    return r.text.count("/determination?iri=")


def service_server(folder: Path, *extra: str):
    """`reasoner serve` with the CDS client file and a PAS token: (url, process, ec, rsa)."""
    ec_key, rsa_key, clients = client_keys(folder)
    url, proc, _ = start(folder / "store", "--cds-clients", str(clients), "--api-token",
                         API_TOKEN, "--max-body-mb", "1", *extra)
    return url, proc, ec_key, rsa_key
