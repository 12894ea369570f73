"""The evidence behind the seed letter, as data (knowledge/evidence/*.ttl).

Checks that every bibliographic record is identifiable, that every record a statement,
recommendation, criterion or passage cites resolves to a record with a title and a year (or is
explicitly flagged as having no known year), and that every number of the seed letter's evidence
is an nr:Measure (or nr:followUp) of a statement citing the source the numbers come from
(the bibliographic records of knowledge/evidence/sources.ttl). Runs on the Turtle files alone,
without the engine.
"""

from __future__ import annotations

import re
import warnings
from decimal import Decimal

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS

from .conftest import ROOT

from reasoner.vocab import CITO, EV, FABIO, NR, SRC

CITO_EVIDENCE = CITO.citesAsEvidence
CITO_AUTHORITY = CITO.citesAsAuthority
YEAR = FABIO.hasPublicationYear


def nr(name: str) -> URIRef:
    return NR[name]


RECORD_CLASSES = (nr("BibliographicRecord"), nr("Guideline"), nr("CoverageDocument"))
CITING = (CITO_EVIDENCE, CITO_AUTHORITY, nr("citation"), nr("fromGuideline"))


@pytest.fixture(scope="module")
def sources() -> Graph:
    return Graph().parse(ROOT / "knowledge" / "evidence" / "sources.ttl")


@pytest.fixture(scope="module")
def kg() -> Graph:
    """Evidence and coverage records plus every pack (criteria cite records, and packs define coverage records)."""
    g = Graph()
    for folder in ("evidence", "coverage"):
        for path in sorted((ROOT / "knowledge" / folder).glob("*.ttl")):
            g.parse(path)
    for path in sorted((ROOT / "shapes").glob("*/*.ttl")):
        g.parse(path)
    return g


def records(g: Graph) -> set[URIRef]:
    return {s for cls in RECORD_CLASSES for s in g.subjects(RDF.type, cls)}


def cited(g: Graph) -> dict[URIRef, set[URIRef]]:
    """Cited record -> the nodes citing it."""
    out: dict[URIRef, set[URIRef]] = {}
    for prop in CITING:
        for s, o in g.subject_objects(prop):
            out.setdefault(o, set()).add(s)
    return out


# ---------------------------------------------------------------- records


def test_sources_file_has_the_seed_records(sources):
    expected = {
        "jordan-snrb-76-patients", "arun-kumar-2015", "vassiliev-2007", "sato-2009",
        "chou-2007-acp-aps", "chou-2009-aps", "olivier-pmr-cpg-synthesis",
        "dworkin-2013-neupsig", "khoromi-2007", "baron-2010",
    }
    found = {str(r)[len(SRC):] for r in records(sources)}
    assert expected <= found, f"missing records: {sorted(expected - found)}"


def test_every_source_has_a_title_a_citation_line_and_a_certainty(sources):
    problems = []
    for rec in sorted(records(sources)):
        for prop, what in ((DCTERMS.title, "title"),
                           (DCTERMS.bibliographicCitation, "citation line"),
                           (nr("recordCertainty"), "certainty"),
                           (nr("certaintyNote"), "certainty note")):
            if sources.value(rec, prop) is None:
                problems.append(f"{rec}: no {what}")
    assert not problems, "\n".join(problems)


def test_identifiers_are_well_formed(sources):
    problems = []
    for rec in records(sources):
        doi = sources.value(rec, URIRef("http://prismstandard.org/namespaces/basic/2.0/doi"))
        if doi is not None and not re.fullmatch(r"10\.\d{4,9}/\S+", str(doi)):
            problems.append(f"{rec}: DOI {doi!r}")
        pmid = sources.value(rec, URIRef("http://purl.org/spar/fabio/hasPubMedId"))
        if pmid is not None and not re.fullmatch(r"\d{1,9}", str(pmid)):
            problems.append(f"{rec}: PMID {pmid!r}")
        year = sources.value(rec, YEAR)
        if year is not None and not re.fullmatch(r"(19|20)\d\d", str(year)):
            problems.append(f"{rec}: year {year!r}")
    assert not problems, "\n".join(problems)


def test_every_cited_source_resolves_with_title_and_year_or_a_flag(kg):
    """A cited record needs a title and a year; a record without a year must say so in its
    nr:certaintyNote. Records without a year are reported (as a warning) with their citers."""
    known = records(kg)
    problems, no_year = [], []
    for rec, citers in sorted(cited(kg).items()):
        names = ", ".join(sorted(str(c).rsplit("/", 1)[-1] for c in citers))
        if rec not in known:
            problems.append(f"{rec} (cited by {names}) is not a bibliographic record")
            continue
        if kg.value(rec, DCTERMS.title) is None:
            problems.append(f"{rec}: no title")
        if kg.value(rec, YEAR) is None:
            note = str(kg.value(rec, nr("certaintyNote")) or "")
            # explicit flag: the certainty note says what is known about the year
            flagged = "year" in note.lower()
            if not flagged:
                problems.append(f"{rec}: no year and not flagged as year-not-found")
            no_year.append(f"{rec} (cited by {names})")
    if no_year:
        warnings.warn("cited records without a publication year (flagged in their certainty "
                      "note): " + "; ".join(no_year))
    assert not problems, "\n".join(problems)
    # the Jordan study is the one record with no known year
    assert [r for r in no_year if "jordan-snrb-76-patients" in r], \
        "the Jordan record should lack a year"


# ---------------------------------------------------------------- statements and measures


def statements(g: Graph) -> set[URIRef]:
    return set(g.subjects(RDF.type, nr("EvidenceStatement"))) | set(
        g.subjects(RDF.type, nr("Recommendation")))


def measures_citing(g: Graph, source: str) -> list[tuple[URIRef, URIRef]]:
    src = URIRef(SRC + source)
    out = []
    for st in statements(g):
        if (st, CITO_EVIDENCE, src) in g or (st, nr("citation"), src) in g:
            out.extend((st, m) for m in g.objects(st, nr("hasMeasure")))
    return out


# (value, unit, source, numerator, denominator): every number of the seed letter's evidence
SEED_NUMBERS = [
    (Decimal("54"), "%", "jordan-snrb-76-patients", None, None),
    (Decimal("29"), "%", "jordan-snrb-76-patients", None, None),
    (Decimal("76"), "patients", "jordan-snrb-76-patients", None, None),
    (Decimal("90.7"), "%", "jordan-snrb-76-patients", 69, 76),
    (Decimal("28.9"), "%", "jordan-snrb-76-patients", 22, 76),
    (Decimal("61.8"), "%", "jordan-snrb-76-patients", 47, 76),
    (Decimal("57.7"), "%", "vassiliev-2007", None, None),
    (Decimal("46.1"), "%", "vassiliev-2007", None, None),
    (Decimal("1"), "ml", "vassiliev-2007", None, None),
    (Decimal("2.5"), "months", "arun-kumar-2015", None, None),
    (Decimal("4.3"), "months", "arun-kumar-2015", None, None),
    (Decimal("78"), "patients", "sato-2009", None, None),
    (Decimal("3"), "patients", "sato-2009", 3, 78),
    (Decimal("14"), "%", "khoromi-2007", None, None),
    (Decimal("7"), "%", "khoromi-2007", None, None),
    (Decimal("58"), "%", "baron-2010", None, None),
    (Decimal("21"), "guidelines", "olivier-pmr-cpg-synthesis", None, None),
]


@pytest.mark.parametrize("value,unit,source,num,den", SEED_NUMBERS,
                         ids=[f"{s}:{v}{u}" for v, u, s, _, _ in SEED_NUMBERS])
def test_seed_number_is_a_measure_of_a_statement_citing_its_source(kg, value, unit, source,
                                                                    num, den):
    hits = []
    for st, m in measures_citing(kg, source):
        v = kg.value(m, nr("measureValue"))
        same_unit = str(kg.value(m, nr("measureUnit"))) == unit
        if v is not None and Decimal(str(v)) == value and same_unit:
            hits.append((st, m))
    assert hits, f"no {value} {unit} measure on a statement citing src:{source}"
    if num is not None:
        assert any(kg.value(m, nr("numerator")) == Literal(num)
                   and kg.value(m, nr("denominator")) == Literal(den)
                   for _, m in hits), f"{value}{unit} lacks {num}/{den}"


def test_seed_numbers_collected():
    assert len(SEED_NUMBERS) == 17


def test_three_month_follow_up_and_76_patients_on_the_jordan_statements(kg):
    src = URIRef(SRC + "jordan-snrb-76-patients")
    jordan = [st for st in statements(kg) if (st, CITO_EVIDENCE, src) in kg]
    assert any(kg.value(st, nr("followUp")) == Literal("P3M") for st in jordan)
    assert any(kg.value(st, nr("cohortSize")) == Literal(76) for st in jordan)
    # the follow-up oddity of the source is recorded
    notes = " ".join(str(kg.value(st, nr("certaintyNote")) or "") for st in jordan)
    assert "3-month" in notes and "6 months" in notes


def test_every_measure_is_complete_and_consistent(kg):
    problems = []
    for st in statements(kg):
        for m in kg.objects(st, nr("hasMeasure")):
            for prop in ("statistic", "measureValue", "measureUnit"):
                if kg.value(m, nr(prop)) is None:
                    problems.append(f"{st}: measure without nr:{prop}")
            num, den = kg.value(m, nr("numerator")), kg.value(m, nr("denominator"))
            value, unit = kg.value(m, nr("measureValue")), str(kg.value(m, nr("measureUnit")))
            if num is not None and den is not None and unit == "%":
                # sources round or truncate (Jordan: 69/76 = 90.79%, reported 90.7%)
                pct = Decimal(str(num)) * 100 / Decimal(str(den))
                if abs(pct - Decimal(str(value))) >= Decimal("0.1"):
                    problems.append(f"{st}: {num}/{den} = {pct:.2f}% but value {value}")
    assert not problems, "\n".join(problems)


def _fmt(value) -> str:
    d = Decimal(str(value))
    return str(d.quantize(Decimal(1))) if d == d.to_integral() else str(d.normalize())


def test_measure_values_appear_in_the_statement_text(kg):
    """Numbers carry over: a measure the text does not state is a sign of drift."""
    problems = []
    for st in statements(kg):
        text = str(kg.value(st, nr("statementText")) or "")
        for m in kg.objects(st, nr("hasMeasure")):
            value = kg.value(m, nr("measureValue"))
            if Decimal(str(value)) == 0:
                continue  # stated in words ("none")
            if not re.search(r"(?<![\d.])" + re.escape(_fmt(value)) + r"(?![\d])", text):
                problems.append(f"{st}: {_fmt(value)} not in its text")
    assert not problems, "\n".join(problems)


def test_statements_and_recommendations_are_complete(kg):
    problems = []
    sections = set(kg.subjects(RDF.type, nr("LetterSection")))
    for st in statements(kg):
        if kg.value(st, nr("statementText")) is None:
            problems.append(f"{st}: no nr:statementText")
        if kg.value(st, RDFS.label) is None:
            problems.append(f"{st}: no rdfs:label")
        section = kg.value(st, nr("letterSection"))
        if section is not None:
            if section not in sections:
                problems.append(f"{st}: unknown section {section}")
            if kg.value(st, nr("order")) is None:
                problems.append(f"{st}: printed but no nr:order")
        cites = [o for p in CITING for o in kg.objects(st, p)]
        if not cites and "no source" not in str(kg.value(st, nr("certaintyNote")) or "").lower() \
                and "nothing is cited" not in str(kg.value(st, nr("certaintyNote")) or "").lower():
            problems.append(f"{st}: cites nothing and its note does not say why")
    for rec in kg.subjects(RDF.type, nr("Recommendation")):
        for prop in ("strength", "fromGuideline"):
            if kg.value(rec, nr(prop)) is None:
                problems.append(f"{rec}: no nr:{prop}")
    assert not problems, "\n".join(problems)


def test_guideline_grades_carry_over(kg):
    rec4 = URIRef(EV + "rec-acp-aps-2007-4")
    assert str(kg.value(rec4, nr("recommendationNumber"))) == "4"
    assert str(kg.value(rec4, nr("strength"))) == "strong"
    assert str(kg.value(rec4, nr("evidenceQuality"))) == "moderate"
    aps = URIRef(EV + "rec-aps-2009-esi")
    grade = (str(kg.value(aps, nr("strength"))), str(kg.value(aps, nr("evidenceQuality"))))
    assert grade == ("weak", "moderate")
    neupsig = URIRef(EV + "rec-neupsig-2013-steroid-injections-radiculopathy")
    assert str(kg.value(neupsig, nr("strength"))) == "weak"
    pmr = URIRef(EV + "olivier-synthesis-excludes-radiculopathy")
    assert "radiculopathy excluded" in str(kg.value(pmr, nr("scope")))


# ---------------------------------------------------------------- letter sections

SEED_HEADINGS = [
    "Clinical Rationale",
    "Conservative Treatment Requirements Met",
    "Diagnostic Imaging Supports Intervention",
    "Clinical Examination Findings",
    "Evidence for Selective Nerve Root Blocks in Radiculopathy",
    "Therapeutic Efficacy",
    "Procedure-Specific Considerations for L5 Nerve Root",
    "Integration with Prior Treatment History",
    "Previous Interventions Context",
    "Distinction from Prior Procedures",
    "Clinical Practice Guideline Context",
    "Important Caveat Regarding Evidence Base",
    "Guideline Recommendations for Radiculopathy",
    "Comprehensive Pain Management Program",
    "Expected Outcomes and Follow-up",
    "Risk-Benefit Analysis",
]


def test_letter_sections_reproduce_the_seed_headings_in_order(kg):
    def path(section):
        parent = kg.value(section, nr("parentSection"))
        own = (int(kg.value(section, nr("order"))),)
        return (path(parent) + own) if parent is not None else own

    sections = sorted((s for s in kg.subjects(RDF.type, nr("LetterSection"))
                       if str(s).startswith(EV + "section-")), key=path)
    assert [str(kg.value(s, RDFS.label)) for s in sections] == SEED_HEADINGS


def test_every_printed_section_has_content(kg):
    printed = set(kg.objects(None, nr("letterSection")))
    leaves = [s for s in kg.subjects(RDF.type, nr("LetterSection"))
              if str(s).startswith(EV + "section-")
              and not any(kg.subjects(nr("parentSection"), s))]
    empty = [str(s) for s in leaves if s not in printed]
    assert not empty, f"sections with nothing to print: {empty}"
