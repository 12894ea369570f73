"""Knowledge-base checks: every Turtle file parses; the code systems, value sets and anatomy are
complete and coherent (docs/architecture.md "Namespaces", docs/fhir-contract.md §2, §3, §4.7, §7)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF, SKOS

ROOT = Path(__file__).resolve().parent.parent
NR = Namespace("https://w3id.org/necessity/ontology#")
VS = Namespace("https://w3id.org/necessity/valueset/")
CODE = "https://w3id.org/necessity/code/"
ICD = Namespace(CODE + "icd10cm/")
ICD_SCHEME = URIRef(CODE + "icd10cm")
# The code lists of the input contract (docs/fhir-contract.md §2, §4), as JSON: the fixture the
# Turtle value sets are checked against.
VALUE_SETS_JSON = ROOT / "tests" / "fixtures" / "fhir" / "value-sets.json"

TURTLE_FILES = sorted(
    list((ROOT / "ontology").glob("*.ttl")) + list((ROOT / "knowledge").rglob("*.ttl"))
)
# The systems of docs/fhir-contract.md §2: FHIR system URI → scheme IRI (docs/architecture.md).
STANDARD_SYSTEMS = {
    "http://www.ama-assn.org/go/cpt": "cpt",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
    "http://snomed.info/sct": "snomed",
    "http://loinc.org": "loinc",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
    "http://dicom.nema.org/resources/ontology/DCM": "dicom",
    "http://unitsofmeasure.org": "ucum",
}
PROJECT_SYSTEMS = (
    "spine-anatomy", "spine-zone", "spine-finding", "esi-observation", "esi-order-detail",
    "conservative-care", "therapy-response", "pain-character",
)


def _parse(*paths: Path) -> Graph:
    graph = Graph()
    for path in paths:
        graph.parse(path, format="turtle")
    return graph


@pytest.fixture(scope="module")
def codes() -> Graph:
    return _parse(*sorted((ROOT / "knowledge" / "codes").glob("*.ttl")))


@pytest.fixture(scope="module")
def value_sets() -> Graph:
    return _parse(ROOT / "knowledge" / "value-sets.ttl")


@pytest.fixture(scope="module")
def anatomy() -> Graph:
    return _parse(ROOT / "knowledge" / "anatomy.ttl")


def test_turtle_files_collected():
    names = {p.relative_to(ROOT).as_posix() for p in TURTLE_FILES}
    assert {"ontology/terminology.ttl", "knowledge/value-sets.ttl", "knowledge/anatomy.ttl",
            "knowledge/codes/icd10cm.ttl", "knowledge/codes/project.ttl"} <= names


@pytest.mark.parametrize("path", TURTLE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_turtle_parses(path: Path):
    assert len(_parse(path)) > 0


# ---------------------------------------------------------------- code systems


def test_schemes_carry_their_fhir_system_uri(codes: Graph):
    identifiers = {}
    for scheme in codes.subjects(RDF.type, SKOS.ConceptScheme):
        ids = list(codes.objects(scheme, DCTERMS.identifier))
        assert len(ids) == 1, f"{scheme}: one dcterms:identifier"
        assert str(scheme).startswith(CODE) and not str(scheme).endswith("/")
        assert codes.value(scheme, SKOS.prefLabel) is not None, scheme
        identifiers[str(ids[0])] = str(scheme)
    expected = {uri: CODE + name for uri, name in STANDARD_SYSTEMS.items()}
    expected.update(
        {f"https://w3id.org/necessity/fhir/CodeSystem/{n}": CODE + n for n in PROJECT_SYSTEMS}
    )
    assert identifiers == expected


def test_every_concept_is_complete(codes: Graph):
    schemes = set(codes.subjects(RDF.type, SKOS.ConceptScheme))
    concepts = set(codes.subjects(RDF.type, SKOS.Concept))
    assert len(concepts) > 300
    seen: dict[tuple, URIRef] = {}
    for concept in concepts:
        scheme = codes.value(concept, SKOS.inScheme)
        assert scheme in schemes, concept
        assert str(concept).startswith(str(scheme) + "/"), f"{concept} outside its scheme namespace"
        notation = codes.value(concept, SKOS.notation)
        assert isinstance(notation, Literal), f"{concept}: no skos:notation"
        assert (scheme, str(notation)) not in seen, f"duplicate notation {notation} in {scheme}"
        seen[(scheme, str(notation))] = concept
        assert codes.value(concept, SKOS.prefLabel) is not None, f"{concept}: no skos:prefLabel"
        for parent in codes.objects(concept, SKOS.broader):
            assert parent in concepts, f"{concept}: broader {parent} is not declared"


def test_cpt_concepts_carry_no_descriptor(codes: Graph):
    cpt = URIRef(CODE + "cpt")
    concepts = list(codes.subjects(SKOS.inScheme, cpt))
    assert len(concepts) == 42
    for concept in concepts:
        for _, prop, value in codes.triples((concept, None, None)):
            if isinstance(value, Literal):
                assert re.fullmatch(r"(CPT )?\d{5}", str(value)), f"{concept} {prop}: {value}"


def test_icd_hierarchy_reaches_block_and_chapter(codes: Graph):
    ancestors = set(codes.transitive_objects(ICD["M51.17"], SKOS.broader))
    assert {ICD["M51.1"], ICD["M51"], ICD["M50-M54"], ICD["chapter-13"]} <= ancestors
    assert codes.value(ICD["M50-M54"], SKOS.notation) == Literal("M50-M54")
    assert codes.value(ICD["M54.17"], SKOS.notation) == Literal("M54.17")


def test_icd_prefix_entries_have_descendants(codes: Graph):
    """Prefix M51.36 is expanded: its 6-character codes exist (build_icd10cm.py)."""
    notations = {str(n) for n in codes.objects(None, SKOS.notation)}
    assert {"M51.36", "M51.360", "M51.369", "A40", "G62", "G62.9", "E11.40"} <= notations


def test_icd_file_names_installed_package():
    """The generated file names the simple-icd-10-cm release it was built from."""
    from importlib import metadata

    try:
        version = metadata.version("simple_icd_10_cm")
    except metadata.PackageNotFoundError:
        pytest.skip("simple-icd-10-cm not installed (extra build-knowledge)")
    head = (ROOT / "knowledge" / "codes" / "icd10cm.ttl").read_text(encoding="utf-8")[:600]
    assert f"simple-icd-10-cm {version} " in head


def test_icd_file_is_current():
    """knowledge/codes/icd10cm.ttl is what scripts/build_icd10cm.py writes today."""
    pytest.importorskip("simple_icd_10_cm")
    out = subprocess.run(
        [sys.executable, "-W", "ignore", str(ROOT / "scripts" / "build_icd10cm.py"), "/dev/stdout"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out == (ROOT / "knowledge" / "codes" / "icd10cm.ttl").read_text(encoding="utf-8")


def test_ucum_days_per_unit(codes: Graph):
    ucum = Namespace(CODE + "ucum/")
    days = {str(codes.value(c, SKOS.notation)): float(v)
            for c, v in codes.subject_objects(NR.daysPerUnit)}
    assert days == {"d": 1, "wk": 7, "mo": 30, "a": 365}
    assert codes.value(URIRef(str(ucum) + "%7Bscore%7D"), SKOS.notation) == Literal("{score}")


# ---------------------------------------------------------------- value sets


def test_value_set_members_are_declared(codes: Graph, value_sets: Graph):
    concepts = set(codes.subjects(RDF.type, SKOS.Concept))
    members = set(value_sets.objects(None, NR.includesCode))
    assert members and members <= concepts, sorted(members - concepts)


def test_value_sets_are_described(value_sets: Graph):
    sets = set(value_sets.subjects(RDF.type, NR.ValueSet))
    assert len(sets) == 38
    for vs in sets:
        assert str(vs).startswith(str(VS))
        for prop in (SKOS.definition, DCTERMS.source):
            assert value_sets.value(vs, prop) is not None, f"{vs}: no {prop}"
        assert value_sets.value(vs, URIRef("http://www.w3.org/2000/01/rdf-schema#label"))
        has_prefix = value_sets.value(vs, NR.includesCodePrefix) is not None
        assert has_prefix == (value_sets.value(vs, NR.prefixScheme) is not None), vs
        assert has_prefix or value_sets.value(vs, NR.includesCode) is not None, f"{vs} is empty"


def test_icd_prefixes_match_codes(codes: Graph, value_sets: Graph):
    notations = {str(n) for n in codes.objects(None, SKOS.notation)}
    for vs, prefix in value_sets.subject_objects(NR.includesCodePrefix):
        assert value_sets.value(vs, NR.prefixScheme) == ICD_SCHEME
        assert any(n.startswith(str(prefix)) for n in notations), f"{vs}: {prefix} matches nothing"


def test_value_sets_match_value_sets_json(codes: Graph, value_sets: Graph):
    """Every code list of tests/fixtures/fhir/value-sets.json is vs:<key>, with the same codes and prefixes."""
    data = json.loads(VALUE_SETS_JSON.read_text(encoding="utf-8"))
    scheme_of = {uri: URIRef(s) for s, uri in ((s, str(i)) for s, i in
                 codes.subject_objects(DCTERMS.identifier))}
    checked = 0
    for key, entry in data.items():
        lists = entry if isinstance(entry, list) else [entry]
        if not all(isinstance(x, dict) and "system" in x and "codes" in x for x in lists):
            continue
        want_codes, want_prefixes = set(), set()
        for item in lists:
            scheme = scheme_of[item["system"]]
            for code in item["codes"]:
                hits = [c for c in codes.subjects(SKOS.notation, Literal(code))
                        if codes.value(c, SKOS.inScheme) == scheme]
                assert len(hits) == 1, f"{key}: {code} not in {scheme}"
                want_codes.add(hits[0])
            want_prefixes |= set(item.get("prefix", []))
        vs = VS[key]
        assert set(value_sets.objects(vs, NR.includesCode)) == want_codes, key
        assert {str(p) for p in value_sets.objects(vs, NR.includesCodePrefix)} == want_prefixes, key
        checked += 1
    assert checked == 30


# ---------------------------------------------------------------- anatomy (docs/fhir-contract.md §4.7)


def test_root_segments(anatomy: Graph, codes: Graph):
    anat = Namespace(CODE + "spine-anatomy/")
    exits = {str(s)[len(anat):]: str(o)[len(anat):] for s, o in anatomy.subject_objects(NR.exitsAt)}
    traverses = {str(s)[len(anat):]: str(o)[len(anat):]
                 for s, o in anatomy.subject_objects(NR.traversesAt)}
    assert exits == {"root-L1": "L1-L2", "root-L2": "L2-L3", "root-L3": "L3-L4",
                     "root-L4": "L4-L5", "root-L5": "L5-S1", "root-S1": "S1-foramen"}
    assert traverses == {"root-L2": "L1-L2", "root-L3": "L2-L3", "root-L4": "L3-L4",
                         "root-L5": "L4-L5", "root-S1": "L5-S1"}
    concepts = set(codes.subjects(RDF.type, SKOS.Concept))
    for s, p, o in anatomy:
        if p in (NR.exitsAt, NR.traversesAt, NR.impliedZone, NR.sideMember, NR.zoneRole):
            assert s in concepts, s
            assert o in concepts or p == NR.zoneRole, o


def test_zones_and_sides(anatomy: Graph):
    zone = Namespace(CODE + "spine-zone/")
    sct = Namespace(CODE + "snomed/")
    roles = dict(anatomy.subject_objects(NR.zoneRole))
    assert roles == {zone.foraminal: NR.ExitingZone, zone.extraforaminal: NR.ExitingZone,
                     zone.paracentral: NR.TraversingZone, zone.central: NR.TraversingZone}
    assert set(anatomy.objects(sct["51440002"], NR.sideMember)) == {sct["7771000"], sct["24028007"]}
    assert set(anatomy.objects(sct["7771000"], NR.sideMember)) == {sct["7771000"]}
    assert set(anatomy.objects(sct["24028007"], NR.sideMember)) == {sct["24028007"]}
    assert len(set(anatomy.subject_objects(NR.impliedZone))) == 3
