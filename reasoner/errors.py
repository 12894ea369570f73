"""Errors the reasoner reports to its callers, each with a documented exit code.

Exit codes (shared by every command; see `reasoner --help`):
  0  ran; the result is positive (approved, conforms, clean)
  1  ran; the result is negative where the command asks for it (validate: does not conform,
     check: problems found, test: mismatches)
  2  bad input: a case, query, policy id or path the user gave is unusable
  3  bad knowledge base: the ontology, knowledge or a policy pack does not load
  4  internal error
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2
EXIT_BAD_KNOWLEDGE = 3
EXIT_INTERNAL = 4


class ReasonerError(Exception):
    """Base class: `str(error)` is one line that names the file and the place."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, source: str | None = None, place: str | None = None):
        self.source = source
        self.place = place
        parts = [p for p in (source, place) if p]
        prefix = ":".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class InputError(ReasonerError):
    """The user's input (case file, FHIR Bundle, query, policy id, path) is unusable."""

    exit_code = EXIT_BAD_INPUT


class KnowledgeError(ReasonerError):
    """The ontology, the knowledge graph or a policy pack does not load or is inconsistent."""

    exit_code = EXIT_BAD_KNOWLEDGE
