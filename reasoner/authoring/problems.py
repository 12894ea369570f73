"""The one result model of `reasoner check`: a `Problem` (file, line, kind, message, how to
fix, severity) and the `CheckReport` that holds them; rendered as text or JSON, never parsed back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rdflib import URIRef

from ..vocab import CODE_BASE, NR, VS

FABIO_YEAR = URIRef("http://purl.org/spar/fabio/hasPublicationYear")
DCT_TITLE = URIRef("http://purl.org/dc/terms/title")
DCT_DATE = URIRef("http://purl.org/dc/terms/date")
DCT_ISSUED = URIRef("http://purl.org/dc/terms/issued")

ERROR, WARNING, INFO = "error", "warning", "info"

#: Namespaces whose IRIs must be declared (check 5). Code systems: everything under CODE_BASE.
PROJECT_NAMESPACES = (str(NR), str(VS), CODE_BASE)

AREAS = ("ontology", "knowledge", "shapes", "cases")


# ====================================================================== result model


@dataclass(frozen=True)
class Problem:
    """One finding of `reasoner check`.

    `file` is relative to the project root (or None for the whole project), `line` 1-based (or
    None when the finding has no place in a file), `kind` a stable machine name (see the module
    docstring), `severity` "error" (exit 1), "warning" or "info" (reported, exit 0).
    """

    kind: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None
    severity: str = ERROR
    subject: str | None = None

    def place(self) -> str:
        if self.file is None:
            return "(project)"
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        return f"{self.place()}: {self.severity}: [{self.kind}] {self.message}\n    fix: {self.fix}"


@dataclass
class CheckReport:
    problems: list[Problem]
    timings: dict[str, float] = field(default_factory=dict)
    files: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def clean(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "clean": self.clean,
            "files": self.files,
            "counts": {s: sum(p.severity == s for p in self.problems) for s in (ERROR, WARNING, INFO)},
            "problems": [p.to_dict() for p in self.problems],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def render_text(self) -> str:
        lines = [p.text() for p in self.problems]
        counts = self.to_dict()["counts"]
        verdict = "clean" if self.clean else "problems found"
        lines.append(
            f"{verdict}: {counts[ERROR]} error(s), {counts[WARNING]} warning(s), {counts[INFO]} note(s) "
            f"in {self.files} file(s) ({sum(self.timings.values()):.1f} s)"
        )
        return "\n".join(lines) + "\n"


# ====================================================================== source files
