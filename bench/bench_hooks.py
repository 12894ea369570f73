#!/usr/bin/env python3
"""Latency of the CRD order-sign hook under concurrent clients, against a real `reasoner serve`
started by the bench on loopback (target: p95 <= 500 ms and no error for 200 calls from 20
clients; the tests never assert time, this benchmark measures it).

    python bench/bench_hooks.py                     # 200 calls, 20 clients, repeated orders
    python bench/bench_hooks.py --distinct          # every call a new order (no cache hit)
    python bench/bench_hooks.py --calls 400 --clients 40 --json

Each call is a CDS Hooks 2.0 order-sign request from the repository's CRD fixtures (the real
CRD examples of cases/realworld/ for CPT-coded draft orders, and cases/fhir-cds-approved), with a
fresh hookInstance and a fresh client JWT (ES384, its own jti), as an EHR sends them; the time
of a call is from sending the request to the last byte of the answer. Without `--distinct` the
orders repeat (as order-select then order-sign repeat them), so after the first call per
order the service answers from its decision cache; `--distinct` gives each call an order id
of its own, so every call is decided (and stored). An error is any answer but 200 with one card.

`measure(...)` returns the figures as a dict (importable from other scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "https://bench-ehr.example.org"
FIXTURES = ["cases/realworld/crd-order-sign-64483/CRDServiceRequest-64483.json",
            "cases/realworld/crd-order-sign-64483-reason-axial",
            "cases/realworld/crd-order-sign-64483-reason-radiculopathy",
            "cases/realworld/crd-order-sign-64483-reason-snomed-low-back-pain",
            "cases/realworld/crd-order-sign-64483-no-prefetch",
            "cases/fhir-cds-approved/bundle.json"]


def payloads() -> list[dict]:
    out = []
    for name in FIXTURES:
        path = ROOT / name
        if path.is_dir():
            path = next(p for p in sorted(path.glob("*.json"))
                        if p.name not in ("expected.json", "provenance.json"))
        out.append(json.loads(path.read_text()))
    return out


def start_server(folder: Path):
    """`reasoner serve` on a fresh store with one bench client key: (url, process, key)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    public = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": "b1"}
    (folder / "clients.json").write_text(json.dumps({ISSUER: {"keys": [public]}}))
    exe = Path(sys.executable).parent / "reasoner"
    proc = subprocess.Popen([str(exe), "serve", "--store", str(folder / "store"), "--port", "0",
                             "--cds-clients", str(folder / "clients.json"),
                             "--max-connections", "128"],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"reasoner serve did not start: {line}")
    return f"http://127.0.0.1:{match.group(1)}", proc, key


def token(key, aud: str) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "sub": "bench", "aud": aud, "exp": now + 120, "iat": now,
                       "jti": str(uuid.uuid4())}, key, algorithm="ES384",
                      headers={"kid": "b1"})


def request_for(template: dict, distinct: bool) -> dict:
    body = json.loads(json.dumps(template))
    body["hookInstance"] = str(uuid.uuid4())
    if distinct:  # a new order id: a new order for the service, decided afresh
        for entry in body["context"]["draftOrders"]["entry"]:
            entry["resource"]["id"] = f"bench-{uuid.uuid4().hex[:12]}"
            entry.pop("fullUrl", None)
    return body


async def _run(url: str, key, calls: int, clients: int, distinct: bool) -> tuple[list, list]:
    import httpx

    target = f"{url}/cds-services/necessity-order-sign"
    templates = payloads()
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(calls):  # bodies and tokens made before the clock starts
        queue.put_nowait((request_for(templates[i % len(templates)], distinct),
                          token(key, target)))
    times, errors = [], []

    async def client():
        async with httpx.AsyncClient(timeout=120) as http:
            while not queue.empty():
                body, signed = queue.get_nowait()
                headers = {"Authorization": f"Bearer {signed}"}
                started = time.perf_counter()
                try:
                    r = await http.post(target, json=body, headers=headers)
                    elapsed = time.perf_counter() - started
                    ok = r.status_code == 200 and len(r.json().get("cards", [])) == 1
                    if not ok:
                        errors.append(f"{r.status_code} {r.text[:120]}")
                except httpx.HTTPError as exc:
                    elapsed = time.perf_counter() - started
                    errors.append(type(exc).__name__)
                times.append(elapsed)

    await asyncio.gather(*(client() for _ in range(clients)))
    return times, errors


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and its threads so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(calls: int = 200, clients: int = 20, distinct: bool = False,
            warm: bool = True) -> dict:
    """Start a server, (warm: one call per fixture first, untimed), then `calls` order-sign
    calls from `clients` concurrent clients; p50/p95/max in ms, errors, wall time."""
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as tmp:
        url, proc, key = start_server(Path(tmp))
        try:
            if warm:
                asyncio.run(_run(url, key, len(FIXTURES), 1, False))
            server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
            started = time.perf_counter()
            times, errors = asyncio.run(_run(url, key, calls, clients, distinct))
            wall = time.perf_counter() - started
            server_cpu = cpu_seconds(proc.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"calls": calls, "clients": clients, "distinct_orders": distinct,
            "p50_ms": round(statistics.median(times) * 1000, 1),
            "p95_ms": round(percentile(times, 0.95) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1), "errors": len(errors),
            "error_samples": errors[:3], "wall_s": round(wall, 2),
            "calls_per_s": round(calls / wall, 1),
            "server_cpu_ms_per_call": round(server_cpu / calls * 1000, 1),
            "client_cpu_ms_per_call": round(client_cpu / calls * 1000, 1),
            "load_average": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--distinct", action="store_true",
                        help="every call a new order (decided, not answered from the cache)")
    parser.add_argument("--no-warm", dest="warm", action="store_false",
                        help="time the first decision of each fixture too")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = measure(args.calls, args.clients, args.distinct, args.warm)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    kind = "distinct orders" if args.distinct else "repeated orders"
    print(f"order-sign: {result['calls']} calls from {result['clients']} clients ({kind}): "
          f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms, "
          f"{result['errors']} error(s); {result['calls_per_s']} calls/s "
          f"({result['wall_s']} s wall); CPU per call: server {result['server_cpu_ms_per_call']} "
          f"ms, bench clients {result['client_cpu_ms_per_call']} ms; load average "
          f"{result['load_average']}")


if __name__ == "__main__":
    main()
