"""The seed case under the Medicare LCD: not approved, and it says exactly why, with passages."""

from __future__ import annotations

import pytest

from .conftest import CASES


@pytest.fixture(scope="module")
def determination(reasoner):
    return reasoner.determine(CASES / "seed-l5-snrb" / "case.ttl", "lcd-l39240")


def test_seed_is_not_approved_under_the_lcd(determination):
    assert determination.outcome == "denied"
    assert determination.clinician_review_required
    assert "clinician" in determination.notice


def test_concordance_is_unmet_with_its_passage_and_facts(determination):
    ci1 = determination.criterion("ESI-CI-1")
    assert ci1.status == "unmet"
    assert ci1.passage is not None and "concordant" in ci1.passage.text.lower()
    assert ci1.passage.citation is not None and ci1.passage.citation.title
    texts = " ".join(f.text for f in ci1.facts)
    assert "transitional" in texts.lower() and "facet" in texts.lower()
    assert all(f.source for f in ci1.facts if "/case/" in f.iri)


def test_missing_baseline_scale_is_requested_with_where_and_passage(determination):
    assert determination.criterion("ESI-CI-2").status == "missing"
    requests = [m for m in determination.missing_information if m.ref == "ESI-CI-2"]
    assert requests, determination.missing_information
    assert requests[0].what and requests[0].where and requests[0].passage


def test_every_criterion_carries_a_cited_passage(determination):
    for c in determination.criteria:
        assert c.passage is not None and c.passage.text, c.ref
        assert c.citations and all(x.title for x in c.citations), c.ref
