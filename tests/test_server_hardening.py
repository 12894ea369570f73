"""`reasoner serve` hardening (issue 12): headers, Host and cross-site checks, body and connection
limits, the update token, the loopback warning, slow pages and what a query may reach; a real
server on loopback, talked to with httpx."""
# ruff: noqa: F811  (the fixtures imported from server_harness are test parameters)

from __future__ import annotations

import socket
import threading
import urllib.parse

import httpx
import pytest

from reasoner.store import KB_GRAPH, EmbeddedStore

from .server_harness import TOKEN, ask_count, hostile_store, secure, start, stop  # noqa: F401  (fixtures)
from .test_server import sample_cases

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
