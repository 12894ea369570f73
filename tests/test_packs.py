"""Every policy pack: valid SHACL (SHACL-for-SHACL), and every criterion complete and cited."""

from __future__ import annotations

import pytest
from rdflib.namespace import RDFS

from reasoner.engines.shacl import validate_against_meta
from reasoner.vocab import NR

from .conftest import ROOT

PACKS = sorted(p.name for p in (ROOT / "shapes").iterdir() if (p / "policy.ttl").exists())


def test_both_required_packs_exist():
    assert {"lcd-l39240", "clinical-snrb"} <= set(PACKS), PACKS


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
                assert c.year, f"{source} (cited by {criterion}) has no year"
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
