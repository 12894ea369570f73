"""The cases `test` and `diff` decide, and the cache that decides each case once per pack
version."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..case import collect_cases


def find_cases(paths: Iterable[str] | None, root: Path) -> list[Path]:
    """Case inputs (files or folders, see `case.collect_cases`); default `cases/` under the
    project root."""
    return collect_cases(list(paths or []) or [root / "cases"])


def _case_folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent

class DeterminationCache:
    """Determinations keyed by (case path, policy, version): `test` and `diff` (and the tests)
    share one so that a case is decided once per pack version."""

    def __init__(self, reasoner):
        self.reasoner = reasoner
        self._cases: dict[str, object] = {}
        self._done: dict[tuple, object] = {}

    def case(self, path: Path):
        key = str(Path(path).resolve())
        if key not in self._cases:
            self._cases[key] = self.reasoner.load_case(path)
        return self._cases[key]

    def determine(self, path: Path, policy: str, version: str | None = None):
        case = self.case(path)
        key = (str(Path(path).resolve()), policy, version)
        if key not in self._done:
            self._done[key] = self.reasoner.determine(case, policy, version)
        return self._done[key]
