"""The determination as JSON (the stable contract of issue 2), byte-identical for the same inputs.

Several determinations of one request (no `--policy`, several packs cover its service) are a
JSON array of the same objects, in policy-id order; one determination stays a single object.
"""

from __future__ import annotations

import json

from ..model import Determination


def _dumps(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_json(determination: Determination) -> str:
    return _dumps(determination.to_dict())


def render_json_all(determinations: list[Determination]) -> str:
    """One determination as its object; several as an array of them."""
    if len(determinations) == 1:
        return render_json(determinations[0])
    return _dumps([d.to_dict() for d in determinations])
