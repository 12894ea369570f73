"""The project as `check` sees it: every Turtle and SPARQL file parsed once, with the text
search that places a node at a line of its file."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import SH

from ..vocab import CODE_BASE, NR, PREFIXES
from .problems import AREAS, Problem

_PREFIX_RE = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([\w-]*):\s*<([^>]*)>", re.MULTILINE | re.IGNORECASE)


@dataclass
class SourceFile:
    """One file of the project with its text, its graph (Turtle) and its prefix declarations."""

    path: Path
    rel: str
    area: str
    text: str
    graph: Graph | None = None
    prefixes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.prefixes = {m.group(1): m.group(2) for m in _PREFIX_RE.finditer(self.text)}
        self._lines = self.text.splitlines()

    def spellings(self, node: URIRef) -> list[str]:
        """The ways `node` can be written in this file: `<IRI>` and each prefixed name."""
        iri = str(node)
        out = [f"<{iri}>"]
        for prefix, ns in self.prefixes.items():
            if ns and iri.startswith(ns) and len(iri) > len(ns):
                out.append(f"{prefix}:{iri[len(ns):]}")
        return out

    def find(self, token: str, subject: bool = False) -> int | None:
        """1-based line of the first occurrence of `token` (as a whole name); with `subject`,
        prefer a line that starts with it."""
        pattern = re.compile(r"(?<![\w:/#.<-])" + re.escape(token) + r"(?![\w-]|\.[\w-])"
                             if not token.startswith("<") else re.escape(token))
        first = None
        for number, line in enumerate(self._lines, 1):
            match = pattern.search(line)
            if not match:
                continue
            if not subject or line[: match.start()].strip() == "":
                return number
            first = first or number
        return first

    def line_of(self, node, subject: bool = True) -> int | None:
        if isinstance(node, URIRef):
            for spelling in self.spellings(node):
                line = self.find(spelling, subject=subject)
                if line:
                    return line
            return None
        if isinstance(node, BNode) and self.graph is not None:
            holder = _named_holder(self.graph, node)
            return self.line_of(holder) if holder is not None else None
        return None


def _named_holder(graph: Graph, node: BNode, depth: int = 0) -> URIRef | None:
    """The named subject that (through blank nodes) holds a blank node."""
    if depth > 20:
        return None
    for s in graph.subjects(None, node):
        if isinstance(s, URIRef):
            return s
        found = _named_holder(graph, s, depth + 1)
        if found is not None:
            return found
    return None


class Project:
    """Every checkable file of one project folder, parsed once; parse problems kept aside."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.files: list[SourceFile] = []
        self.rq_files: list[SourceFile] = []
        self.problems: list[Problem] = []
        for area in AREAS:
            base = self.root / area
            if not base.exists():
                continue
            for path in sorted(base.rglob("*.ttl")):
                self.files.append(self._parse(path, area))
            for path in sorted(base.rglob("*.rq")):
                self.rq_files.append(SourceFile(path, self._rel(path), area, path.read_text(encoding="utf-8")))
        for path in sorted((self.root / "qc").glob("*.rq")) if (self.root / "qc").exists() else []:
            self.rq_files.append(SourceFile(path, self._rel(path), "qc", path.read_text(encoding="utf-8")))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _parse(self, path: Path, area: str) -> SourceFile:
        from ..kb import _syntax_line, _syntax_message

        text = path.read_text(encoding="utf-8", errors="replace")
        source = SourceFile(path, self._rel(path), area, text)
        graph = Graph()
        try:
            graph.parse(data=text, format="turtle", publicID=path.as_uri())
            source.graph = graph
        except Exception as exc:  # rdflib raises several types for bad syntax
            place = _syntax_line(exc)
            line = int(place.split()[-1]) if place else None
            self.problems.append(Problem(
                "parse", _syntax_message(exc), "correct the Turtle syntax at that line (a missing "
                "' .' or ';', an unclosed string or an undeclared prefix are the usual causes)",
                source.rel, line))
        return source

    # ------------------------------------------------------------ views

    def area(self, *areas: str) -> list[SourceFile]:
        return [f for f in self.files if f.area in areas and f.graph is not None]

    def graph(self, *areas: str) -> Graph:
        g = Graph()
        for f in self.area(*areas):
            g += f.graph
        return g

    def packs(self) -> dict[str, list[SourceFile]]:
        """shapes/<folder>/ -> its parsed files (every folder, policy or not)."""
        out: dict[str, list[SourceFile]] = defaultdict(list)
        for f in self.area("shapes"):
            rel = Path(f.rel).parts
            if len(rel) >= 3:
                out[rel[1]].append(f)
        return dict(out)

    def locate(self, node, files: Iterable[SourceFile] | None = None) -> tuple[str | None, int | None]:
        """(file, line) of the subject `node` among `files` (default: every file)."""
        files = list(files) if files is not None else self.files
        for f in files:
            if f.graph is not None and (node, None, None) in f.graph:
                return f.rel, f.line_of(node)
        for f in files:
            if f.graph is not None and (None, None, node) in f.graph:
                return f.rel, f.line_of(node, subject=False)
        return None, None


# ====================================================================== check


_QUERY_PROPS = (SH.select, SH.ask, NR.traceQuery)


def pack_prefix_lines(graph: Graph) -> str:
    """PREFIX lines of a pack: its sh:declare nodes (SHACL 5.2.1), then the project's."""
    lines = {}
    for decl in graph.objects(None, SH.declare):
        prefix, ns = graph.value(decl, SH.prefix), graph.value(decl, SH.namespace)
        if prefix is not None and ns is not None:
            lines[str(prefix)] = str(ns)
    for prefix, ns in PREFIXES.items():
        lines.setdefault(prefix, str(ns))
    return lines


def _short(node) -> str:
    if node is None:
        return "?"
    text = str(node)
    for prefix, ns in PREFIXES.items():
        if text.startswith(str(ns)):
            return f"{prefix}:{text[len(str(ns)):]}"
    if text.startswith(CODE_BASE):
        return text[len(CODE_BASE):]
    return text.rsplit("/", 1)[-1] if "/" in text else text
