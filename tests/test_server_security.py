"""`reasoner serve` under attack (issue 12): each high-severity attack of the security review
against a real server on loopback (a subprocess, talked to with httpx), plus the hardening the
issue asks for. Script injections are tried in headless Chromium: the payloads set
``document.title`` to a marker that only appears when the script runs."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from rdflib import Literal, URIRef

from reasoner.store import KB_GRAPH, EmbeddedStore
from reasoner.vocab import NR

from .conftest import ROOT
from .test_server import chromium, run_chromium, sample_cases

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


# ------------------------------------------------------------------ high: memory exhaustion

def test_cartesian_queries_stay_bounded_and_other_clients_are_served(secure):
    """Four cartesian queries at once (as the review sent them, plus the ORDER BY and COUNT
    forms that build or compute everything before the first row): none returns a whole result,
    the server's memory stays bounded, it answers another client meanwhile and stays up."""
    url, proc, _ = secure
    bound = 2 * 1024 ** 3
    outcomes, peak = [], [0]
    queries = [CARTESIAN, CARTESIAN, CARTESIAN + " ORDER BY ?f ?c",
               "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f }"]

    def heavy(query):
        try:
            with httpx.stream("POST", f"{url}/sparql", content=query, timeout=120,
                              headers={"Content-Type": "application/sparql-query"}) as r:
                size = 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if tree_rss(proc.pid) > bound:
                        break
                outcomes.append(("complete", r.status_code, size))
        except httpx.HTTPError as exc:
            outcomes.append(("cut", type(exc).__name__, 0))

    threads = [threading.Thread(target=heavy, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    light_ok = []
    while any(t.is_alive() for t in threads):
        peak[0] = max(peak[0], tree_rss(proc.pid))
        if peak[0] > bound:
            break
        if not light_ok:
            light_ok.append(ask_count(url))
        time.sleep(0.2)
    assert peak[0] <= bound, f"server grew to {peak[0] // 1024 ** 2} MiB"
    for t in threads:
        t.join(timeout=120)
    assert light_ok and light_ok[0] == 3
    assert len(outcomes) == 4
    assert all(o[0] == "cut" or o[1] in (400, 503) for o in outcomes), outcomes
    assert proc.poll() is None and ask_count(url) == 3


def test_limits_answer_with_a_reason(secure):
    url, _, _ = secure
    post = {"headers": {"Content-Type": "application/sparql-query"}, "timeout": 60}
    r = httpx.post(f"{url}/sparql", content="SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f }",
                   **post)
    assert r.status_code == 503 and "time limit" in r.text
    r = httpx.post(f"{url}/sparql", content=CARTESIAN + " ORDER BY ?f ?c", **post)
    assert r.status_code == 503 and "memory limit" in r.text
    r = httpx.post(f"{url}/sparql", content="SELECT * WHERE { ?s ?p ?o } LIMIT 5", **post)
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 5


def test_a_query_whose_client_leaves_is_stopped(hostile_store):
    """With a long time limit, a query whose client disconnected stops computing: the server's
    processes use (almost) no CPU afterwards, and the next query is answered."""
    location, _ = hostile_store
    url, proc, _ = start(location.parent / "leave", "--query-timeout", "600",
                         "--query-workers", "1")
    try:
        assert ask_count(url) == 3
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{url}/sparql", content="SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . "
                       "?d ?e ?f . ?g ?h ?i }", timeout=1.5,
                       headers={"Content-Type": "application/sparql-query"})
        time.sleep(2)     # the server notices, kills the worker and warms a fresh one
        used = tree_cpu(proc.pid)
        time.sleep(3)
        used = tree_cpu(proc.pid) - used
        assert used < 0.5, f"the abandoned query still computes ({used:.1f} s of CPU in 3 s)"
        assert ask_count(url) == 3
    finally:
        stop(proc)


# ------------------------------------------------------------------ high: SSRF via SERVICE

class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_service_and_remote_from_are_refused_and_nothing_is_contacted(secure):
    url, _, _ = secure
    target = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    _Recorder.seen = []
    there = f"http://127.0.0.1:{target.server_address[1]}/x"
    try:
        queries = [f"SELECT * WHERE {{ SERVICE <{there}> {{ ?s ?p ?o }} }}",
                   f"select * where {{ optional {{ service silent <{there}> {{ ?s ?p ?o }} }} }}",
                   f"SELECT * FROM <{there}> WHERE {{ ?s ?p ?o }}",
                   f"SELECT * FROM NAMED <{there}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"]
        for query in queries:
            for r in (httpx.get(f"{url}/sparql", params={"query": query}, timeout=30),
                      httpx.post(f"{url}/sparql", content=query, timeout=30,
                                 headers={"Content-Type": "application/sparql-query"}),
                      httpx.post(f"{url}/sparql", data={"query": query}, timeout=30)):
                assert r.status_code == 400, (query, r.status_code, r.text[:200])
                assert len(r.text.strip().splitlines()) == 1
        r = httpx.post(f"{url}/sparql", content=f"LOAD <{there}>", timeout=30,
                       headers={"Content-Type": "application/sparql-update",
                                "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 400 and "LOAD" in r.text
        time.sleep(0.5)
        assert _Recorder.seen == []
    finally:
        target.shutdown()
        target.server_close()


# ------------------------------------------------------------------ high: script injection

def _no_script_ran(page_url: str) -> str:
    exe = chromium()
    if not exe:
        return ""
    dom = run_chromium(exe, page_url, "--dump-dom").stdout
    assert dom.strip(), "chromium printed no DOM"
    assert RAN not in dom, f"the injected script ran on {page_url}"
    return dom


def test_reflected_script_in_the_query_page_does_not_run(secure):
    url, _, _ = secure
    payload = f"</script><script>document.title={MARK}</script><!--"
    page = f"{url}/?query={urllib.parse.quote(payload)}"
    html = httpx.get(page, timeout=30).text
    assert "</script><script>document.title" not in html
    assert "&lt;/script&gt;&lt;script&gt;" in html     # kept, as text, for the editor
    _no_script_ran(page)


def test_stored_script_in_a_record_does_not_run(secure):
    url, _, bad = secure
    pages = [f"{url}/determinations",
             f"{url}/determination?iri={urllib.parse.quote(bad, safe='')}"]
    for page in pages:
        r = httpx.get(page, timeout=60)
        assert r.status_code == 200
        assert "<img" not in r.text and 'class="<' not in r.text
        assert "&lt;img src=x onerror=document.title=" in r.text   # shown, as text
        _no_script_ran(page)
    # the value is not a known outcome: shown as 'unknown', never as its text in a class
    assert 'class="unknown">unknown<' in httpx.get(pages[0], timeout=60).text


# ------------------------------------------------------------------ hardening

def test_security_headers_and_no_version_banner(secure):
    url, _, _ = secure
    for path in ("/", "/determinations", "/sparql?query=ASK%7B%7D", "/nowhere"):
        r = httpx.get(url + path, timeout=30)
        csp = r.headers.get("content-security-policy", "")
        script = next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")
        assert script and "unsafe-inline" not in script and "unsafe-eval" not in script, path
        assert "frame-ancestors 'none'" in csp
        assert r.headers.get("x-frame-options") == "DENY"
        assert r.headers.get("referrer-policy") == "no-referrer"
        assert r.headers.get("x-content-type-options") == "nosniff"
        assert "server" not in r.headers, r.headers.get("server")


def test_host_header_is_checked(secure):
    url, _, _ = secure
    port = urllib.parse.urlsplit(url).port
    assert httpx.get(f"{url}/", headers={"Host": "attacker.example"}, timeout=30).status_code == 400
    assert httpx.get(f"{url}/", headers={"Host": f"attacker.example:{port}"},
                     timeout=30).status_code == 400
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(f"{url}/", headers={"Host": host}, timeout=30).status_code == 200


def test_cross_site_forms_and_links_are_refused(secure):
    url, _, _ = secure
    port = urllib.parse.urlsplit(url).port
    form = {"query": "ASK {}"}
    for headers in ({"Origin": "http://attacker.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"},
                    {"Sec-Fetch-Site": "same-site"}):
        r = httpx.post(f"{url}/sparql", data=form, headers=headers, timeout=30)
        assert r.status_code == 403, headers
    r = httpx.get(f"{url}/sparql", params=form, headers={"Sec-Fetch-Site": "cross-site"},
                  timeout=30)
    assert r.status_code == 403
    # a cross-site update form with the token in the form is not an update
    r = httpx.post(f"{url}/sparql", data={"update": "DROP ALL", "access_token": TOKEN},
                   timeout=30)
    assert r.status_code == 401
    # the page's own form posts (same origin) and plain clients (no Origin) are served
    for headers in ({"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}, {}):
        r = httpx.post(f"{url}/sparql", data=form, headers=headers, timeout=30)
        assert r.status_code == 200
    # a link from another site opens the query page without running the query
    r = httpx.get(f"{url}/", params={"query": "ASK {}", "run": "1"},
                  headers={"Sec-Fetch-Site": "cross-site"}, timeout=30)
    assert 'data-run="false"' in r.text


def test_oversized_body_is_413(secure):
    url, _, _ = secure
    body = b"# " + b"x" * (1024 ** 2 + 10)
    r = httpx.post(f"{url}/sparql", content=body, timeout=30,
                   headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 413


def _raw(url: str, request: bytes) -> bytes:
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                break
        return data


def test_malformed_content_length_and_chunks_are_400(secure):
    url, proc, _ = secure
    host = urllib.parse.urlsplit(url).netloc.encode()
    for head in (b"Content-Length: abc\r\n\r\nASK {}",
                 b"Content-Length: -5\r\n\r\nASK {}",
                 b"Content-Length: 3\r\nContent-Length: 7\r\n\r\nASK {}",
                 b"Transfer-Encoding: chunked\r\n\r\nzz\r\nASK {}\r\n0\r\n\r\n"):
        answer = _raw(url, b"POST /sparql HTTP/1.1\r\nHost: " + host +
                      b"\r\nContent-Type: application/sparql-query\r\n" + head)
        assert answer.startswith(b"HTTP/1.1 400"), (head, answer[:80])
    assert proc.poll() is None and ask_count(url) == 3


def test_half_open_connections_are_closed_and_do_not_stall_the_server(secure):
    url, _, _ = secure
    parts = urllib.parse.urlsplit(url)
    sockets = []
    try:
        for i in range(40):
            s = socket.create_connection((parts.hostname, parts.port), timeout=30)
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")   # never finishes its head
            sockets.append(s)
        for s in sockets:   # the server closes each (after --idle-timeout), none is left open
            assert s.recv(1024) == b""
    finally:
        for s in sockets:
            s.close()
    assert ask_count(url) == 3


def test_knowledge_graph_is_not_a_determination_page(secure):
    url, _, _ = secure
    for iri in (KB_GRAPH, "https://w3id.org/necessity/ontology#Determination", "urn:none"):
        r = httpx.get(f"{url}/determination", params={"iri": iri}, timeout=30)
        assert r.status_code == 404, iri


def test_update_needs_the_token_in_the_header(secure):
    url, _, _ = secure
    before = ask_count(url)
    update = ("INSERT DATA { GRAPH <urn:x:s> { <urn:x:s> a "
              "<https://w3id.org/necessity/ontology#Determination> } }")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{url}/sparql", content=update, timeout=30,
                       headers={"Content-Type": "application/sparql-update", **headers})
        assert r.status_code == 401
    assert ask_count(url) == before
    r = httpx.post(f"{url}/sparql", content=update, timeout=30,
                   headers={"Content-Type": "application/sparql-update",
                            "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 204 and ask_count(url) == before + 1   # queries see the update
    r = httpx.post(f"{url}/sparql", content="DROP GRAPH <urn:x:s>", timeout=30,
                   headers={"Content-Type": "application/sparql-update",
                            "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 204 and ask_count(url) == before


def test_warning_when_bound_beyond_loopback(hostile_store):
    location, _ = hostile_store
    url, proc, lines = start(location.parent / "wide", host="0.0.0.0")
    try:
        assert any("warning" in line and "loopback" in line for line in lines), lines
    finally:
        stop(proc)


def test_a_slow_page_does_not_stall_the_others(tmp_path, reasoner):
    """While one page re-derives its letter (here: the re-derivation lock is held), another
    determination page still answers within its time limit, with the stored verdicts and a note
    instead of the letter."""
    from reasoner.server import make_server
    from reasoner.server.app import Settings

    store = EmbeddedStore(str(tmp_path / "pages"))
    case = reasoner.load_case(sample_cases(1)[0])
    d = reasoner.determine(case, "lcd-l39240")
    store.put(d.iri, reasoner.record_graph(d, case))
    server = make_server(store, port=0, settings=Settings(page_timeout=1.0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pages = server.app.state.pages
    try:
        url = "http://127.0.0.1:%d" % server.server_address[1]
        with pages.lock:   # a slow page holds it
            r = httpx.get(f"{url}/determination", params={"iri": d.iri}, timeout=60)
        assert r.status_code == 200
        assert "<h2>Trace</h2>" in r.text and "<h2>Letter</h2>" not in r.text
        assert "busy re-deriving another page" in r.text
        pages._reasoner = reasoner                  # loaded already
        server.app.state.settings.page_timeout = 120  # and time enough: the letter is back
        r = httpx.get(f"{url}/determination", params={"iri": d.iri}, timeout=180)
        assert r.status_code == 200 and "<h2>Letter</h2>" in r.text
    finally:
        server.shutdown()
        server.server_close()
        store.close()


@pytest.mark.parametrize("query, refused", [
    ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/x> { ?s ?p ?o } }", True),
    ("select * where { optional { service silent ?x { ?a ?b ?c } } }", True),
    ("SELECT * FROM <http://169.254.169.254/latest> WHERE { ?s ?p ?o }", True),
    ("SELECT * FROM NAMED <http://remote.example/g> WHERE { GRAPH ?g { ?s ?p ?o } }", True),
    ("LOAD <http://remote.example/data.ttl>", True),
    ("INSERT { ?s ?p ?o } USING <http://remote.example/g> WHERE { ?s ?p ?o }", True),
    ("SELECT * WHERE { << ?a ?b ?c >> ?p ?o . SERVICE <http://x.example/> { } }", True),
    ("SELECT * WHERE { SERVICE <http://allowed.example/sparql> { ?s ?p ?o } }", False),
    ("SELECT * FROM <urn:stored> WHERE { ?s ?p ?o }", False),
    ("SELECT * WHERE { ?s ?p 'SERVICE <http://x.example/>' } # SERVICE <http://x.example/>", False),
    ("PREFIX service: <urn:s:> SELECT * WHERE { ?s service:from ?o }", False),
    ("INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> \"LOAD <http://x.example/> FROM\" } }", False),
])
def test_what_a_query_may_reach(query, refused):
    """Only the store, or the endpoints the operator allows: checked on the parse tree, with a
    token scan for what rdflib's grammar does not cover (SPARQL-star)."""
    from reasoner.server.sparqlcheck import QueryRefused, check_query

    def check():
        check_query(query, ["http://allowed.example/sparql"], lambda iri: iri == "urn:stored")

    if refused:
        with pytest.raises(QueryRefused):
            check()
    else:
        check()
