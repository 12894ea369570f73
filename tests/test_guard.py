"""A case states case facts only, within bounded size, with plausible values (issue 12, points
2 to 4; reasoner/guard). Every hostile input is refused by `reasoner determine` with exit code 2
and one line naming the file and the triple or the limit; each was accepted (or crashed) before.
The hostile cases are generated from the seed case (tests/fixtures/hostile/)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner
from rdflib.namespace import RDF

from rdflib.namespace import RDF

from reasoner.cli import main
from reasoner.guard import limits
from reasoner.vocab import NR

from .conftest import CASES, ROOT

_spec = importlib.util.spec_from_file_location(
    "hostile", ROOT / "tests" / "fixtures" / "hostile" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def refused(path, *words):
    """`determine` refuses the case: exit 2, one line naming the file and every word."""
    result = CliRunner().invoke(main, ["determine", str(path), "--policy", "lcd-l39240",
                                       "--format", "json"], catch_exceptions=False)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output[-600:]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output[-600:]
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ point 2: case facts only

def test_a_case_cannot_state_its_own_determination(tmp_path):
    path = hostile.appended(tmp_path, "forged-outcome",
                            f"<{hostile.SEED_DETERMINATION}> nr:outcome nr:Approved ; "
                            f"nr:clinicianReviewRequired false .")
    refused(path, hostile.SEED_DETERMINATION, "determination")


def test_a_case_cannot_state_value_set_membership(tmp_path):
    path = hostile.appended(tmp_path, "forged-value-set",
                            "@prefix vs: <https://w3id.org/necessity/valueset/> .\n"
                            "icd:M54.50 nr:inValueSet vs:diagnosis-covered-radicular .")
    refused(path, "icd10cm/M54.50", "inValueSet")


def test_a_case_cannot_assert_what_a_rule_infers(tmp_path):
    path = hostile.appended(tmp_path, "forged-concordance",
                            ":mri-facet-l3-l4 nr:implicatesRoot anat:root-L5 .")
    refused(path, "mri-facet-l3-l4", "implicatesRoot", "rules")


@pytest.mark.parametrize("turtle, words", [
    # knowledge: the code hierarchy, crosswalks, drug ingredients, anatomy, units, laterality
    ("icd:M54.50 skos:broader icd:M54.1 .", ("broader",)),
    ("icd:M54.50 skos:exactMatch icd:M54.17 .", ("exactMatch",)),
    ("rxn:161 nr:hasIngredient rxn:6902 .", ("hasIngredient",)),
    ("anat:root-L5 nr:exitsAt anat:root-L4 .", ("exitsAt",)),
    ("sct:7771000 nr:sideMember sct:24028007 .", ("sideMember",)),
    # a criterion-result term on a case node, and a class only the rules assign
    (":request nr:verdict nr:Met .", ("verdict", "determination")),
    (":mri a nr:ImagingReport .", ("ImagingReport",)),
    (":dx-radiculopathy a nr:ValueSet .", ("ValueSet",)),
    # a fact about a node of the knowledge base, even with a description property
    ("icd:M54.50 rdfs:label \"covered radicular pain\" .", ("icd10cm/M54.50", "knowledge")),
])
def test_knowledge_and_record_terms_are_refused(tmp_path, turtle, words):
    prefix = "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
    path = hostile.appended(tmp_path, "forged", prefix + turtle)
    refused(path, *words)


def test_reserved_terms_come_from_the_ontology_knowledge_and_rules(reasoner):
    """Derived, not listed: every property of ontology/inferred.ttl, every property with the
    domain nr:Determination or nr:CriterionResult, every predicate the knowledge graph uses
    (except plain description such as rdfs:label) is reserved."""
    from rdflib import Graph
    from rdflib.namespace import OWL, RDF, RDFS

    from reasoner.guard import guard_for
    from reasoner.guard.terms import DESCRIPTION
    from reasoner.vocab import NR

    terms = guard_for(reasoner.kb).terms
    inferred = Graph().parse(ROOT / "ontology" / "inferred.ttl")
    declared = {s for t in (OWL.ObjectProperty, OWL.DatatypeProperty)
                for s in inferred.subjects(RDF.type, t)}
    assert len(declared) >= 20 and declared <= terms.inferred
    for cls in (NR.Determination, NR.CriterionResult):
        props = set(reasoner.kb.ontology.subjects(RDFS.domain, cls))
        assert props and props <= terms.record
    assert set(reasoner.kb.knowledge.predicates()) - DESCRIPTION <= \
        terms.knowledge | terms.inferred | terms.record


def test_every_repository_case_states_case_facts_only(reasoner):
    from reasoner.case import collect_cases
    from reasoner.guard import check_case

    paths = collect_cases([CASES])
    assert len(paths) >= 110
    for path in paths:
        check_case(reasoner.kb, reasoner.load_case(path))  # raises on the first bad triple


# ------------------------------------------------------------------ point 3: bounded size

def test_too_many_prefixes_is_refused_before_parsing(tmp_path):
    lines = "".join(f"@prefix p{i}: <https://example.org/{i}/> .\n"
                    for i in range(limits.MAX_PREFIXES + 1))
    path = hostile.appended(tmp_path, "prefixes", lines)
    refused(path, "MAX_PREFIXES")


def test_a_long_rdf_list_is_refused(tmp_path):
    items = " ".join("1" for _ in range(limits.MAX_LIST_LENGTH + 1))
    path = hostile.appended(tmp_path, "list", f":request rdfs:comment ( {items} ) .")
    refused(path, "MAX_LIST_LENGTH")


def test_too_many_terms_is_refused_before_parsing(tmp_path):
    items = " ".join("1" for _ in range(limits.MAX_TERMS + 1))
    path = hostile.appended(tmp_path, "terms", f":request rdfs:comment ( {items} ) .")
    refused(path, "MAX_TERMS")


def test_an_oversized_file_is_refused_before_reading(tmp_path):
    path = hostile.appended(tmp_path, "big", "# " + "x" * limits.MAX_CASE_BYTES)
    refused(path, "MAX_CASE_BYTES")


def test_too_many_triples_is_refused_before_the_rules(reasoner, monkeypatch):
    """MAX_TRIPLES applies to the parsed or mapped graph (Turtle and FHIR alike); shown with
    the limit lowered below the seed's size, for both forms of the seed."""
    from reasoner.errors import InputError

    monkeypatch.setattr(limits, "MAX_TRIPLES", 50)
    for path in (hostile.SEED, hostile.SEED_BUNDLE):
        with pytest.raises(InputError, match="MAX_TRIPLES"):
            reasoner.load_case(path)


def test_a_huge_number_is_refused(tmp_path):
    path = hostile.replaced(tmp_path, "digits", "nr:levelQuantity 1 ;",
                            f"nr:levelQuantity {'9' * 1000} ;")
    refused(path, "MAX_NUMBER_CHARS", "levelQuantity")


def test_a_5000_digit_number_in_a_bundle_is_refused(tmp_path):
    path = hostile.bundle_with(tmp_path, "digits", '"onsetDateTime": "2024-03-16",',
                               f'"onsetDateTime": "2024-03-16", "x": {"9" * 5000},')
    refused(path, "MAX_NUMBER_CHARS")


def test_500_repeated_observations_are_decided_like_one(reasoner, tmp_path):
    """The issue's slow case, in Turtle: the seed's pain-character observation copied 500 times
    under new IRIs. Decided, with the seed's verdicts (the rules choose among the 501 tied
    assessments as among one). Its time is measured by bench/bench_scale.py, not asserted: it
    took minutes with the former rules 60, 72 and 75, which compared every pair of facts."""
    path = hostile.copied_observation(tmp_path, "repeated", "pain-character", 500)
    case = reasoner.load_case(path)
    assert len(set(case.graph.subjects(RDF.type, NR.PainCharacterAssessment))) == 501
    seed = reasoner.determine(CASES / "seed-l5-snrb", "lcd-l39240")
    d = reasoner.determine(case, "lcd-l39240")
    assert d.verdicts() == seed.verdicts() and d.outcome == seed.outcome == "denied"


def test_the_limits_are_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, value in limits.LIMITS.items():
        assert name in readme and f"{value:,}" in readme, name


# ------------------------------------------------------------------ point 4: plausibility

@pytest.mark.parametrize("old, new, words", [
    ('nr:onsetDate "2024-03-16"^^xsd:date', 'nr:onsetDate "2026-04-31"^^xsd:date',
     ("dx-radiculopathy", "onsetDate", "2026-04-31", "xsd:date")),
    ('nr:requestedDate "2026-03-16"^^xsd:date',
     'nr:requestedDate "2026-03-16T10:00:00"^^xsd:dateTime', ("requestedDate", "date-time")),
    ("nr:levelQuantity 1 ;", 'nr:levelQuantity "two" ;', ("levelQuantity", "not a number")),
    ("nr:levelQuantity 1 ;", "nr:levelQuantity -3 ;", ("levelQuantity", "-3")),
    ("nr:levelQuantity 1 ;", "nr:levelQuantity 0 ;", ("levelQuantity", "level count of 0")),
    ('nr:birthDate "1966-09-20"^^xsd:date', 'nr:birthDate "2090-01-01"^^xsd:date',
     ("birthDate", "after the requested date")),
    ('nr:periodEnd "2026-02-10"^^xsd:date', 'nr:periodEnd "2026-01-10"^^xsd:date',
     ("methylprednisolone", "periodEnd", "before it starts")),
])
def test_implausible_values_are_refused(tmp_path, old, new, words):
    refused(hostile.replaced(tmp_path, "implausible", old, new), *words)


def test_an_invalid_fhir_date_is_refused(tmp_path):
    path = hostile.bundle_with(tmp_path, "fhir-date", '"onsetDateTime": "2024-03-16",',
                               '"onsetDateTime": "2025-13-10",')
    refused(path, "onsetDateTime", "entry 2")


def test_the_guard_runs_on_a_graph_built_without_load_case(reasoner):
    """`Reasoner.determine` checks a case however it was built (server, notebooks)."""
    from rdflib import Graph

    from reasoner.case import case_from_graph
    from reasoner.errors import InputError

    text = hostile.seed_text() + "\n:mri-facet-l3-l4 nr:implicatesRoot anat:root-L5 .\n"
    graph = Graph().parse(data=text, format="turtle")
    case = case_from_graph(graph, source="built", kind="turtle", default_id="built")
    with pytest.raises(InputError, match="implicatesRoot"):
        reasoner.determine(case, "lcd-l39240")
    assert json.dumps(limits.LIMITS)  # the limits are plain numbers
