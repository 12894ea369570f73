"""Shared fixtures: the knowledge base is loaded once per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"


_CACHE_DIR_MADE: list[str] = []


def pytest_configure(config):
    """The session's own disk cache (reasoner/cache.py), shared by the xdist workers (they
    inherit the variable): tests never read or fill the user's cache, and the first use in
    the session builds it. Tests of the cache itself use their own folders."""
    if not os.environ.get("NECESSITY_CACHE_DIR"):
        folder = tempfile.mkdtemp(prefix="necessity-cache-")
        os.environ["NECESSITY_CACHE_DIR"] = folder
        _CACHE_DIR_MADE.append(folder)


def pytest_unconfigure(config):
    for folder in _CACHE_DIR_MADE:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def reasoner():
    from reasoner.api import Reasoner

    return Reasoner.load(ROOT)


def turtle_cases() -> list[Path]:
    return sorted(CASES.glob("*/case.ttl"))


from .store_corpus import corpus  # noqa: E402,F401  (session fixture of the store tests)
