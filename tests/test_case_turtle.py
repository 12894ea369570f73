"""Reading a Turtle case (reasoner/case.py `read_turtle`, issue 9 point 3): pyoxigraph's parser,
each term made as rdflib's parser makes it. On every Turtle case of the repo the graph is the one
rdflib's parser reads (compared as graphs, blank nodes aside), and the determination is the same
byte for byte; what pyoxigraph refuses or would read differently is read by rdflib."""

from __future__ import annotations

import pytest
from rdflib import Literal, URIRef
from rdflib.compare import isomorphic

from reasoner.case import read_turtle
from reasoner.errors import InputError
from reasoner.kb import parse_turtle

from .conftest import CASES

TURTLE_CASES = sorted(p for p in CASES.rglob("*.ttl"))


def test_every_turtle_case_reads_as_rdflib_reads_it():
    assert len(TURTLE_CASES) >= 56
    differ = [p for p in TURTLE_CASES
              if not isomorphic(read_turtle(p), parse_turtle(p, error=InputError))]
    assert not differ, f"{len(differ)} file(s) read differently: {differ[:5]}"


def test_a_case_read_either_way_is_decided_byte_for_byte_alike(reasoner, monkeypatch):
    import reasoner.case as case_module
    from reasoner.render.json import render_json as to_json

    picked = TURTLE_CASES[::7]
    assert len(picked) >= 8
    fast = [to_json(reasoner.determine(reasoner.load_case(p), "lcd-l39240")) for p in picked]
    monkeypatch.setattr(case_module, "read_turtle",
                        lambda path: parse_turtle(path, error=InputError))
    slow = [to_json(reasoner.determine(reasoner.load_case(p), "lcd-l39240")) for p in picked]
    assert fast == slow


@pytest.mark.parametrize("text, expected", [
    ('<x> <http://e/p> 40.0 .', Literal("40.0", datatype=URIRef(
        "http://www.w3.org/2001/XMLSchema#decimal"))),
    ('<x> <http://e/p> 1.5e3 .', Literal(1500.0)),
    ('<x> <http://e/p> "01"^^<http://www.w3.org/2001/XMLSchema#integer> .', Literal(1)),
    ('<x> <http://e/p> "x"@EN .', Literal("x", lang="EN")),  # the tag as written: rdflib reads
    ('<x> <http://e/p> <rel> .', None),
])
def test_terms_are_made_as_rdflib_makes_them(tmp_path, text, expected):
    path = tmp_path / "case.ttl"
    path.write_text(text)
    graph = read_turtle(path)
    assert isomorphic(graph, parse_turtle(path, error=InputError))
    (s, _, o), = graph
    assert s == URIRef((tmp_path / "x").as_uri())  # relative IRIs against the file
    if expected is not None:
        assert o == expected and type(o) is type(expected)


def test_bad_turtle_gets_rdflib_one_line_error(tmp_path):
    path = tmp_path / "case.ttl"
    path.write_text("@prefix : <http://e/> .\n:a :b :c ;\n  :d .\n")
    with pytest.raises(InputError) as fast:
        read_turtle(path)
    with pytest.raises(InputError) as slow:
        parse_turtle(path, error=InputError)
    assert str(fast.value) == str(slow.value)
    assert str(path) in str(fast.value) and "\n" not in str(fast.value)


def test_blank_nodes_of_two_files_are_distinct(tmp_path):
    path = tmp_path / "case.ttl"
    path.write_text("<http://e/a> <http://e/p> [ <http://e/q> 1 ] .\n")
    first, second = read_turtle(path), read_turtle(path)
    assert not set(first.subjects()) & set(second.subjects()) - {URIRef("http://e/a")}


def test_seed_case_reads_the_same():
    seed = CASES / "seed-l5-snrb" / "case.ttl"
    assert isomorphic(read_turtle(seed), parse_turtle(seed))
