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


