"""The determination as JSON (the stable contract of issue 2), byte-identical for the same inputs."""

from __future__ import annotations

import json

from ..model import Determination


def render_json(determination: Determination) -> str:
    return json.dumps(determination.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
