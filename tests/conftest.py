"""Shared fixtures: the knowledge base is loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"


@pytest.fixture(scope="session")
def reasoner():
    from reasoner.api import Reasoner

    return Reasoner.load(ROOT)


def turtle_cases() -> list[Path]:
    return sorted(CASES.glob("*/case.ttl"))


from .store_corpus import corpus  # noqa: E402,F401  (session fixture of the store tests)
