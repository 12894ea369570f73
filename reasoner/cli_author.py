"""Authoring commands (check, test, diff) for guideline authors; registered on the main CLI group."""

from __future__ import annotations


def register(group) -> None:
    """Add this module's commands to `group`."""
