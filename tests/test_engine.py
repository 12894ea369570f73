"""The engine: verdict precedence, outcome rule, versions, fast path equals reference pySHACL,
PROV-O output, determinism."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic, to_isomorphic

from reasoner.api import Reasoner
from reasoner.case import case_from_graph
from reasoner.determine import build_case_graph
from reasoner.engines.shacl import validate_reference
from reasoner.render.json import render_json
from reasoner.render.rdf import determination_graph
from reasoner.vocab import NR

from .conftest import ROOT, turtle_cases

MINI = ROOT / "tests" / "fixtures" / "mini"

CASE_TTL = """
@prefix nr: <https://w3id.org/necessity/ontology#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix : <https://w3id.org/necessity/case/mini/> .
:case a nr:PriorAuthorizationCase ; nr:indexRequest :req .
:req nr:requestedDate "{date}"^^xsd:date {extra} .
{dx}
"""


def mini_case(date="2026-03-16", extra="", dx=":dx a nr:Diagnosis ."):
    g = Graph().parse(data=CASE_TTL.format(date=date, extra=extra, dx=dx), format="turtle")
    return case_from_graph(g, source="mini", kind="turtle", default_id="mini")


@pytest.fixture(scope="module")
def mini():
    return Reasoner.load(MINI)


def test_approved_when_every_applicable_criterion_is_met(mini):
    d = mini.determine(mini_case(extra='; nr:status "checked"'), "mini")
    assert d.verdicts() == {"M-1": "met", "M-2": "met", "M-3": "not-applicable"}
    assert d.outcome == "approved" and not d.clinician_review_required


def test_missing_pends_and_lists_what_and_where(mini):
    d = mini.determine(mini_case(dx=""), "mini")
    assert d.verdicts()["M-1"] == "missing" and d.outcome == "pended"
    assert [(m.ref, m.what, m.where) for m in d.missing_information] == [
        ("M-1", "a diagnosis", "the order"), ("M-2", "no flag check", "")]


def test_unmet_wins_over_missing_and_denial_needs_a_clinician(mini):
    d = mini.determine(mini_case(extra='; nr:text "flag"'), "mini")
    assert d.verdicts()["M-2"] == "unmet" and d.outcome == "denied"
    assert d.clinician_review_required and "clinician" in d.notice


def test_not_applicable_wins_over_unmet(mini):
    d = mini.determine(mini_case(extra='; nr:text "score" ; nr:status "checked"'), "mini")
    assert d.verdicts()["M-3"] == "unmet"
    d = mini.determine(mini_case(extra='; nr:status "checked"'), "mini")
    assert d.verdicts()["M-3"] == "not-applicable"


def test_version_in_force_on_the_service_date(mini):
    assert mini.determine(mini_case(date="2025-06-01"), "mini").policy.version == "1"
    assert mini.determine(mini_case(date="2026-06-01"), "mini").policy.version == "2"
    assert mini.determine(mini_case(date="2026-06-01"), "mini", version="1").policy.version == "1"


def test_met_criterion_is_traced_to_its_facts(mini):
    d = mini.determine(mini_case(extra='; nr:status "checked"'), "mini")
    facts = d.criterion("M-1").facts
    assert [f.iri for f in facts] == ["https://w3id.org/necessity/case/mini/dx"]


CASES = turtle_cases()


def test_corpus_is_there():
    assert len(CASES) >= 20, f"only {len(CASES)} Turtle cases collected"


_TRANSLATED: dict = {}


@contextmanager
def each_query_text_translated_once():
    """rdflib's SPARQL text -> algebra translation, done once per distinct (text, base,
    namespaces) in this process instead of on every call (90% of a naive pySHACL run is
    re-parsing the same `sh:select` texts). It is a pure function of its key and rdflib
    evaluates a translated query as often as asked (its documented prepared-query use), so
    pySHACL's results are unchanged; pySHACL itself runs as documented, nothing of it reused.
    Unlike the engines' own cache (reasoner/engines/shacl.py) the key is the exact text."""
    from rdflib.plugins.sparql import processor

    real = processor.SPARQLProcessor.query

    def query(self, str_or_query, initBindings=None, initNs=None,  # noqa: N803
              base=None, DEBUG=False):  # noqa: N803
        if isinstance(str_or_query, str):
            key = (str_or_query, base, tuple(sorted((initNs or {}).items())))
            if key not in _TRANSLATED:
                _TRANSLATED[key] = processor.translateQuery(
                    processor.parseQuery(str_or_query), base, initNs)
            str_or_query = _TRANSLATED[key]
        return real(self, str_or_query, initBindings, initNs, base, DEBUG)

    processor.SPARQLProcessor.query = query
    try:
        yield
    finally:
        processor.SPARQLProcessor.query = real


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.parent.name)
def test_fast_path_equals_reference_pyshacl(reasoner, path):
    """The reused ShapesGraph + prepared-query cache reports exactly what pyshacl.validate does."""
    case = reasoner.load_case(path)
    # the two hand-written packs; the commercial example is derived from the LCD pack's shapes
    for policy_id in ("lcd-l39240", "clinical-snrb"):
        pack = reasoner.kb.pack(policy_id)
        fast = reasoner.validate(case, policy_id)
        data = build_case_graph(reasoner.kb, case).data
        plain = Graph()
        for t in data:
            plain.add(t)
        with each_query_text_translated_once():
            ref = validate_reference(plain, pack.graph)
        key = lambda r: (str(r.source_shape), str(r.focus_node), str(r.value), str(r.severity))
        assert sorted(map(key, fast.results)) == sorted(map(key, ref.results)), policy_id


def test_prov_graph_is_deterministic_and_queryable(reasoner):
    path = ROOT / "cases" / "seed-l5-snrb" / "case.ttl"
    d1 = reasoner.determine(path, "lcd-l39240")
    d2 = reasoner.determine(path, "lcd-l39240")
    g1 = Graph().parse(data=determination_graph(d1).serialize(format="turtle"), format="turtle")
    g2 = determination_graph(d2)
    assert isomorphic(to_isomorphic(g1), to_isomorphic(g2))
    rows = list(g1.query(
        "SELECT ?ref ?verdict WHERE { ?d nr:hasCriterionResult ?r . ?r nr:referenceId ?ref ; nr:verdict ?verdict }",
        initNs={"nr": NR}))
    assert len(rows) == len(d1.criteria)
    assert render_json(d1) == render_json(d2)
    assert json.loads(render_json(d1))["case"] == d1.case


# ---------------------------------------------------------------------- version selection, routing


def test_version_selection_says_which_version_and_why(mini):
    d = mini.determine(mini_case(date="2026-06-01"), "mini")
    assert (d.policy.version, d.version_selection) == ("2", "in force on the service date 2026-06-01")
    d = mini.determine(mini_case(date="2019-06-01"), "mini")  # before every encoded version
    assert d.policy.version == "2"
    assert d.version_selection == ("the current version: no encoded version was in force on "
                                   "2019-06-01")
    d = mini.determine(mini_case(date="2019-06-01"), "mini", version="1")
    assert (d.policy.version, d.version_selection) == ("1", "version 1 asked for by name")
    assert json.loads(render_json(d))["version_selection"] == "version 1 asked for by name"
    g = determination_graph(d)
    assert [str(o) for o in g.objects(None, NR.versionSelection)] == ["version 1 asked for by name"]


CPT_64483 = "https://w3id.org/necessity/code/cpt/64483"


def routed_project(tmp_path):
    """The mini project with three packs: `mini` (covers CPT 64483), `mini-example` (covers it
    too but is marked nr:illustrativeOnly) and `mini-other` (covers another code)."""
    root = tmp_path / "project"
    (root / "shapes").mkdir(parents=True)
    (root / "ontology").symlink_to(MINI / "ontology")
    text = (MINI / "shapes" / "mini" / "pack.ttl").read_text()
    assert 'nr:policyId "mini"' in text
    for pid, extra in (("mini", ""), ("mini-example", "; nr:illustrativeOnly true"),
                       ("mini-other", None)):
        folder = root / "shapes" / pid
        folder.mkdir()
        code = CPT_64483 if extra is not None else CPT_64483[:-5] + "99213"
        folder.joinpath("pack.ttl").write_text(
            text.replace('nr:policyId "mini"', f'nr:policyId "{pid}"')
            + f"\nm:policy nr:appliesToService <{code}> {extra or ''} .\n")
    return Reasoner.load(root)


def routed_case(code=CPT_64483):
    return mini_case(extra=f'; nr:status "checked" ; nr:code <{code}>')


def test_routing_selects_covering_packs_and_skips_example_packs(tmp_path):
    r = routed_project(tmp_path)
    assert r.kb.pack("mini-example").illustrative_only and not r.kb.pack("mini").illustrative_only
    assert r.covering_policies(routed_case()) == ["mini"]
    assert [d.policy.id for d in r.determine_all(routed_case())] == ["mini"]
    # an example pack decides when it is named
    assert [d.policy.id for d in r.determine_all(routed_case(), "mini-example")] == ["mini-example"]
    assert r.covering_policies(routed_case(CPT_64483[:-5] + "99213")) == ["mini-other"]


def test_routing_without_a_covering_pack_names_the_code(tmp_path):
    from reasoner.errors import InputError

    r = routed_project(tmp_path)
    with pytest.raises(InputError, match="no policy covers the requested service: code "
                                         ".*12345") as err:
        r.covering_policies(routed_case(CPT_64483[:-5] + "12345"))
    assert err.value.exit_code == 2
    with pytest.raises(InputError, match="no service code"):
        r.covering_policies(mini_case())


@pytest.mark.parametrize("name", ["case.ttl", "bundle.json"])
def test_the_guide_templates_decide(reasoner, name):
    """docs/writing-a-case.md: both templates decide, as written, under the LCD pack and by
    routing on their service code."""
    path = ROOT / "docs" / "templates" / name
    d = reasoner.determine(path, "lcd-l39240")
    assert d.outcome == "approved", d.verdicts()
    assert "lcd-l39240" in reasoner.covering_policies(path)
