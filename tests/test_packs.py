"""Every policy pack: valid SHACL (SHACL-for-SHACL), every criterion complete and cited, policy ids
equal to folder names, illustrative packs marked, and real packs holding only real versions
(issue 10, point 2: the versioning demonstration lives in the example pack)."""

from __future__ import annotations

import pytest
from rdflib.namespace import RDFS

from reasoner.engines.shacl import validate_against_meta
from reasoner.vocab import NR

from .conftest import ROOT

PACKS = sorted(p.name for p in (ROOT / "shapes").iterdir() if p.is_dir() and any(p.glob("*.ttl")))
REAL_PACKS = ["clinical-snrb", "lcd-l39240"]
ILLUSTRATIVE_PACKS = ["commercial-esi-example", "example-policy-versions"]
EXAMPLE = "example-policy-versions"
EXAMPLE_NS = "https://w3id.org/necessity/policy/example-policy-versions/"
EXAMPLE_CURRENT = EXAMPLE_NS + "version-2026-01-01"
EXAMPLE_SUPERSEDED = EXAMPLE_NS + "version-2025-illustrative"


def test_both_required_packs_exist():
    assert {"lcd-l39240", "clinical-snrb"} <= set(PACKS), PACKS


def test_every_pack_folder_is_loaded_under_its_own_name(reasoner):
    """Policy id = folder name, so that `--policy X` finds shapes/X."""
    assert len(PACKS) == 4, PACKS
    assert sorted(reasoner.kb.packs) == PACKS
    for policy_id, pack in reasoner.kb.packs.items():
        assert pack.folder.name == policy_id


def test_illustrative_packs_are_marked_and_real_packs_are_not(reasoner):
    from rdflib import Literal

    assert sorted(REAL_PACKS + ILLUSTRATIVE_PACKS) == PACKS
    for policy_id in PACKS:
        pack = reasoner.kb.pack(policy_id)
        flags = list(pack.graph.objects(pack.policy_iri, NR.illustrativeOnly))
        if policy_id in ILLUSTRATIVE_PACKS:
            assert flags == [Literal(True)], policy_id
        else:
            assert flags == [], policy_id


def test_the_lcd_pack_holds_only_its_one_known_version(reasoner):
    pack = reasoner.kb.pack("lcd-l39240")
    assert [v.version for v in pack.versions] == ["2026-01-01"]
    for s, o in pack.graph.subject_objects(RDFS.comment):
        assert "illustrative" not in str(o).lower() or "illustrative" in str(s), s


def test_a_2025_request_with_29_days_of_pain_is_approved_under_the_lcd(reasoner):
    """Issue 10: before the illustrative 6-week version left the LCD pack, this request (dated
    2025-04-26, pain for 29 days, everything else in order) was denied under it."""
    folder = ROOT / "cases" / "approved-2025-pain-29-days"
    d = reasoner.determine(reasoner.load_case(folder / "case.ttl"), "lcd-l39240")
    assert d.service["date"] == "2025-04-26"
    assert d.policy.version == "2026-01-01"
    assert d.criterion("ESI-CI-3").status == "met"
    assert str(getattr(d.outcome, "value", d.outcome)).lower().endswith("approved")


# ---------------------------------------------------------------- the versioning example pack


def test_example_pack_decides_a_2025_request_under_its_superseded_version(reasoner):
    """Asked for by name, the example pack decides a request dated in 2025 under its invented
    2025 version (6 weeks of pain): the 29-day request is denied there, on ESI-CI-3 only."""
    from rdflib import URIRef

    from reasoner.render.rdf import determination_graph

    folder = ROOT / "cases" / "approved-2025-pain-29-days"
    d = reasoner.determine(reasoner.load_case(folder / "case.ttl"), EXAMPLE)
    assert d.policy.iri == EXAMPLE_SUPERSEDED
    assert "-illustrative-2025" in d.criterion("ESI-CI-3").id
    assert d.criterion("ESI-CI-3").status == "unmet"
    assert [c.ref for c in d.criteria if c.status == "unmet"] == ["ESI-CI-3"]
    assert (None, NR.underPolicyVersion, URIRef(EXAMPLE_SUPERSEDED)) in determination_graph(d)
    d_2026 = reasoner.determine(reasoner.load_case(ROOT / "cases" / "approvable-left-l5" / "case.ttl"), EXAMPLE)
    assert d_2026.policy.iri == EXAMPLE_CURRENT


def test_example_superseded_threshold_flips_a_28_day_case(reasoner):
    """Pain for exactly 28 days meets the current 4 weeks and fails the illustrative 6 weeks."""
    source = ROOT / "cases" / "fhir-approved-pain-exactly-28-days" / "bundle.json"
    now = reasoner.determine(source, EXAMPLE)
    before = reasoner.determine(source, EXAMPLE, EXAMPLE_SUPERSEDED)
    assert now.policy.iri == EXAMPLE_CURRENT
    assert now.criterion("ESI-CI-3").status == "met"
    assert before.criterion("ESI-CI-3").status == "unmet"
    assert "6 weeks" in before.criterion("ESI-CI-3").message


def test_example_versions_differ_only_in_the_illustrative_threshold(reasoner):
    from reasoner.authoring import shape_changes

    pack = reasoner.kb.pack(EXAMPLE)
    changes = shape_changes(pack, pack.version(EXAMPLE_SUPERSEDED), pack, pack.version(EXAMPLE_CURRENT))
    assert [c.ref for c in changes] == ["ESI-CI-3"]
    details = "\n".join(changes[0].details)
    assert "[-BIND(\"P42D\"^^xsd:dayTimeDuration-]{+BIND(\"P28D\"^^xsd:dayTimeDuration+}" in details


def test_example_current_version_equals_the_lcd(reasoner):
    from reasoner.authoring import shape_changes

    lcd, ex = reasoner.kb.pack("lcd-l39240"), reasoner.kb.pack(EXAMPLE)
    assert shape_changes(lcd, lcd.version(), ex, ex.version(EXAMPLE_CURRENT)) == []


def test_example_superseded_version_is_labelled_illustrative(reasoner):
    from rdflib import URIRef

    g = reasoner.kb.pack(EXAMPLE).graph
    v = URIRef(EXAMPLE_SUPERSEDED)
    assert "ILLUSTRATIVE" in str(g.value(v, RDFS.comment))
    assert "NOT a real revision" in str(g.value(v, RDFS.comment))
    assert "Invented" in str(g.value(v, NR.certaintyNote))


@pytest.mark.parametrize("folder", PACKS)
def test_pack_passes_shacl_meta_shapes(reasoner, folder):
    pack = next(p for p in reasoner.kb.packs.values() if p.folder.name == folder)
    report = validate_against_meta(pack.graph)
    assert report.conforms, report.text[:2000]


@pytest.mark.parametrize("folder", PACKS)
def test_every_criterion_is_complete_and_cited(reasoner, folder):
    pack = next(p for p in reasoner.kb.packs.values() if p.folder.name == folder)
    g = pack.graph
    refs = []
    for version in pack.versions:
        assert version.criteria, f"{version.iri} has no criteria"
        for criterion in version.criteria:
            ref = g.value(criterion, NR.referenceId)
            assert ref, f"{criterion} has no nr:referenceId"
            refs.append((str(version.iri), str(ref)))
            assert g.value(criterion, RDFS.label), criterion
            assert g.value(criterion, NR.message), criterion
            assert g.value(criterion, NR.onUnmet) or g.value(criterion, NR.onMissing), criterion
            assert g.value(criterion, NR.encodesPassage), f"{criterion} encodes no passage"
            citations = list(g.objects(criterion, NR.citation))
            assert citations, f"{criterion} has no citation"
            for source in citations:
                c = reasoner.determiner.citation(source, pack)
                assert c.title, f"{source} (cited by {criterion}) has no title"
                # a record without a year must say why (e.g. a web page that shows none)
                assert c.year or "year" in (c.certainty_note or ""), \
                    f"{source} (cited by {criterion}) has no year and no note saying why"
            assert pack.condition_shapes and any(
                crit == criterion for crit, _ in pack.condition_shapes.values()
            ) or g.value(criterion, NR.traceQuery) is not None, criterion
    assert len(refs) == len(set(refs)), "reference ids repeat within a version"


@pytest.mark.parametrize("folder", PACKS)
def test_every_condition_shape_names_a_known_criterion_and_kind(reasoner, folder):
    pack = next(p for p in reasoner.kb.packs.values() if p.folder.name == folder)
    criteria = {c for v in pack.versions for c in v.criteria}
    kinds = {NR.UnmetCondition, NR.MissingCondition, NR.NotApplicableCondition}
    assert pack.condition_shapes
    for shape, (criterion, kind) in pack.condition_shapes.items():
        assert criterion in criteria, f"{shape} decides {criterion}, which no version lists"
        assert kind in kinds, f"{shape} has condition kind {kind}"


# ---------------------------------------------------------------- docs/policies/<pack>.md


def test_policy_docs_are_up_to_date_with_the_packs():
    """docs/policies/<policy-id>.md is generated from the packs (scripts/build_policy_docs.py);
    a change to a pack without re-running the script fails here."""
    import subprocess
    import sys

    pages = sorted((ROOT / "docs" / "policies").glob("*.md"))
    assert [p.stem for p in pages] == PACKS
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_policy_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("folder", PACKS)
def test_policy_doc_names_every_criterion_and_threshold(folder):
    text = (ROOT / "docs" / "policies" / f"{folder}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# Policy pack `{folder}`")
    for line in (ROOT / "shapes").joinpath(folder).glob("*.ttl"):
        for ref in __import__("re").findall(r'nr:referenceId "([^"]+)"', line.read_text(encoding="utf-8")):
            assert f"### {ref}: " in text, (folder, ref)
