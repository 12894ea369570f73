"""The guideline author's workflow: `check` (lint), `test` (cases + criterion coverage) and `diff`
(what a policy change flips). Core module: no click; the CLI is `reasoner/cli_author.py`.

Every finding of `check` is a `Problem` (file, line, kind, message, how to fix, severity): one
structured result model, rendered as text or JSON by the CLI, never parsed back from text.

What `check` looks at (docs/authoring.md, "What `reasoner check` checks"):

1. every Turtle file under `ontology/`, `knowledge/`, `shapes/`, `cases/` parses (kind `parse`);
   every SPARQL text (`knowledge/rules/*.rq`, `qc/*.rq`, `sh:select`/`sh:ask` and `nr:traceQuery`
   literals of the packs) parses (kind `sparql`);
2. the ontology is consistent and has no unsatisfiable class: HermiT through the one owlready2
   adapter (`reasoner/engines/owl.py`); without Java the check is reported as skipped (a warning),
   never passed silently (kinds `ontology-inconsistent`, `unsatisfiable-class`, `reasoner-error`,
   `reasoner-skipped`);
3. every pack passes the SHACL-for-SHACL meta-shapes (SHACL §C, kind `meta-shacl`);
4. every criterion has a reference id unique within each version of its pack, a label, a message,
   a failure meaning (`nr:onUnmet`/`nr:onMissing`) and a citation resolving to a source with a
   title and a year (kinds `criterion-*`);
5. every IRI in a project namespace (`nr:`, the code systems, `vs:`) used in shapes, cases and
   knowledge, in triples or in SPARQL text, is declared in the ontology, a code system or a value
   set (kind `undeclared-iri`: catches typos);
6. the QC queries `qc/*.rq`, ROBOT-report style: each must return no rows (kind `qc/<name>`).

Line numbers: a problem about a node is placed at the first line of its file where the node is
written as a subject (its prefixed name or `<IRI>` at the start of a line), else where it is first
written at all; a blank node is placed at the named node that holds it. This is a text search,
good enough for files written in the project's style (one subject per paragraph).
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SH, SKOS

from .case import collect_cases
from .errors import InputError
from .model import reference_sort_key
from .vocab import CODE_BASE, NR, PREFIXES, VS

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
        from .kb import _syntax_line, _syntax_message

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


def run_check(root: Path | str | None = None, paths: Iterable[str] | None = None,
              hermit: bool = True) -> CheckReport:
    """Run every check on the project at `root` (default: NECESSITY_HOME or the repository).

    `paths` (files or folders) restrict the report to problems in those files; the whole project
    is still loaded, since declarations and citations live in other files. HermiT runs only when
    `hermit` is true and the ontology is in scope.
    """
    from .kb import project_root

    paths = list(paths or [])
    if root is None and len(paths) == 1 and (Path(paths[0]) / "ontology").is_dir():
        root, paths = Path(paths[0]), []  # `reasoner check PROJECT-FOLDER`
    root = Path(root) if root else project_root()
    if not (root / "ontology").is_dir():
        raise InputError("not a project folder (no ontology/)", source=str(root))
    selected = _selection(root, paths)
    timings: dict[str, float] = {}

    def timed(name, func, *args):
        started = time.perf_counter()
        out = func(*args)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        return out

    project = timed("parse", Project, root)
    problems = list(project.problems)
    problems += timed("sparql", check_sparql, project)
    ontology_in_scope = selected is None or any(
        _under(root / "ontology" / "x.ttl", s) or _under(s, root / "ontology") for s in selected)
    if ontology_in_scope:
        problems += timed("hermit", check_ontology, project, hermit)
    problems += timed("meta-shacl", check_meta_shacl, project)
    problems += timed("criteria", check_criteria, project)
    problems += timed("declared", check_declared, project)
    problems += timed("qc", check_qc, project)
    if selected is not None:
        problems = [p for p in problems if p.file is None and p.kind.startswith("reasoner")
                    or p.file is not None and any(_under(root / p.file, s) for s in selected)]
    problems.sort(key=lambda p: (p.file or "", p.line or 0, p.kind, p.message))
    return CheckReport(_unique(problems), timings, len(project.files) + len(project.rq_files))


def _selection(root: Path, paths) -> list[Path] | None:
    if not paths:
        return None
    out = []
    for p in paths:
        path = Path(p)
        path = path if path.is_absolute() else Path.cwd() / path
        if not path.exists():
            raise InputError("file not found", source=str(p))
        out.append(path.resolve())
    if len(out) == 1 and out[0] == root.resolve():
        return None
    return out


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


# ---------------------------------------------------------------------- SPARQL texts


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


def check_sparql(project: Project) -> list[Problem]:
    """Every SPARQL text parses: rules, QC queries, and the pack's sh:select/sh:ask/traceQuery.

    Parsed by pyoxigraph (Rust, strict SPARQL 1.1): about 1 ms a query where rdflib's pyparsing
    grammar takes 20-25 ms, which keeps `check` well under its 10 s budget. Each query is run on
    an empty store, which costs nothing beyond the parse."""
    import pyoxigraph as ox

    store = ox.Store()
    project_prefixes = {k: str(v) for k, v in PREFIXES.items()}

    def parse_error(text: str, prefixes: dict[str, str]) -> tuple[str, int | None] | None:
        declared = {m.group(1) for m in _PREFIX_RE.finditer(text)}
        header = [f"PREFIX {p}: <{ns}>" for p, ns in sorted(prefixes.items()) if p not in declared]
        try:
            store.query("\n".join(header) + "\n" + text)
        except SyntaxError as exc:
            match = re.search(r"error at (\d+):(\d+)", str(exc))
            line = int(match.group(1)) - len(header) if match else None
            return _one_line(exc), line
        except Exception:
            return None  # parsed; failed to evaluate on an empty store (not a syntax matter)
        return None

    problems = []
    for f in project.rq_files:
        error = parse_error(f.text, project_prefixes)
        if error:
            problems.append(Problem("sparql", f"bad SPARQL: {error[0]}",
                                    "correct the query; `reasoner query FILE` shows rdflib's reading of it",
                                    f.rel, error[1]))
    cache: dict[str, tuple | None] = {}
    for folder, files in project.packs().items():
        graph = Graph()
        for f in files:
            graph += f.graph
        prefixes = pack_prefix_lines(graph)
        for f in files:
            for s, p, o in f.graph:
                if p not in _QUERY_PROPS or not isinstance(o, Literal):
                    continue
                key = folder + "\n" + str(o)
                if key not in cache:
                    cache[key] = parse_error(str(o), prefixes)
                if cache[key]:
                    holder = s if isinstance(s, URIRef) else _named_holder(f.graph, s)
                    problems.append(Problem(
                        "sparql", f"bad SPARQL in {_short(p)} of {_short(holder)}: {cache[key][0]}",
                        "correct the query text; prefixes come from the pack's sh:declare nodes",
                        f.rel, f.line_of(holder) if holder is not None else None, subject=str(holder)))
    return problems


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _sparql_line(exc: Exception, text: str) -> int | None:
    loc = getattr(exc, "loc", None)
    if isinstance(loc, int):
        return text.count("\n", 0, loc) + 1
    return None


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


# ---------------------------------------------------------------------- HermiT


def check_ontology(project: Project, hermit: bool = True) -> list[Problem]:
    """Consistency and unsatisfiable classes of the merged ontology (HermiT via engines/owl.py)."""
    if not hermit:
        return [Problem("reasoner-skipped", "HermiT consistency check skipped (--no-hermit)",
                        "run `reasoner check` without --no-hermit before committing an ontology change",
                        severity=INFO)]
    onto = [f for f in project.files if f.area == "ontology"]
    if any(f.graph is None for f in onto):
        return [Problem("reasoner-skipped", "HermiT not run: an ontology file does not parse",
                        "fix the parse errors first", severity=WARNING)]
    from .engines import owl

    result = owl.check_ontology(project.root)
    if result.status == owl.JAVA_UNAVAILABLE:
        return [Problem("reasoner-skipped", f"skipped: java not available ({result.message}); the "
                        "ontology's consistency was NOT checked",
                        "install Java 17 (owlready2 runs HermiT on it) and re-run `reasoner check`",
                        severity=WARNING)]
    if result.status == owl.ERROR:
        return [Problem("reasoner-error", result.message,
                        "read the HermiT message; an rdfs:range xsd:date is outside the OWL 2 "
                        "datatype map (use xsd:dateTime or no range)")]
    if result.status == owl.INCONSISTENT:
        return [Problem("ontology-inconsistent", result.message,
                        "look for an individual typed with two disjoint classes, or a value against "
                        "a property's range; remove axioms until HermiT passes to find it",
                        "ontology")]
    problems = []
    for iri in result.unsatisfiable:
        file, line = project.locate(URIRef(iri), [f for f in project.files if f.area == "ontology"])
        problems.append(Problem("unsatisfiable-class",
                                f"class <{iri}> is unsatisfiable (equivalent to owl:Nothing)",
                                "check its rdfs:subClassOf / owl:disjointWith axioms: it is declared "
                                "a subclass of disjoint classes", file, line, subject=iri))
    return problems


# ---------------------------------------------------------------------- SHACL-SHACL


def check_meta_shacl(project: Project) -> list[Problem]:
    """Every pack (every shapes/<folder>/) conforms to the SHACL-SHACL meta-shapes (SHACL §C)."""
    from .engines.shacl import validate_against_meta

    problems = []
    for folder, files in sorted(project.packs().items()):
        graph = Graph()
        for f in files:
            graph += f.graph
        report = validate_against_meta(graph)
        for res in report.results:
            node = res.focus_node
            holder = node if isinstance(node, URIRef) else _named_holder(graph, node)
            file, line = project.locate(holder, files) if holder is not None else (files[0].rel, None)
            path = f" (path {_short(res.result_path)})" if res.result_path is not None else ""
            value = f", value {res.value.n3() if hasattr(res.value, 'n3') else res.value}" if res.value is not None else ""
            problems.append(Problem(
                "meta-shacl",
                f"{_short(holder)}{path}{value}: {res.message or 'does not conform to SHACL-SHACL'}",
                "correct the shape: SHACL-SHACL (SHACL §C) says which property or value is not allowed",
                file, line, subject=str(holder)))
    return problems


# ---------------------------------------------------------------------- criteria


def check_criteria(project: Project) -> list[Problem]:
    """Reference id (unique within each version), label, message, failure meaning and a citation
    to a source with title and year, for every criterion of every pack."""
    records = project.graph("knowledge", "shapes")  # a pack may cite a record another pack defines
    problems = []
    for folder, files in sorted(project.packs().items()):
        g = Graph()
        for f in files:
            g += f.graph
        criteria = set(g.subjects(RDF.type, NR.CoverageCriterion)) | set(g.objects(None, NR.hasCriterion))

        def add(kind, crit, message, fix):
            file, line = project.locate(crit, files)
            problems.append(Problem(kind, f"criterion {_short(crit)}: {message}", fix, file, line,
                                    subject=str(crit)))

        for crit in sorted(criteria):
            if g.value(crit, NR.referenceId) is None:
                add("criterion-reference-id", crit, "no nr:referenceId",
                    "add nr:referenceId \"<id of the policy passage>\" (e.g. ESI-CI-3)")
            if g.value(crit, RDFS.label) is None:
                add("criterion-label", crit, "no rdfs:label", "add rdfs:label \"<short name>\"")
            if g.value(crit, NR.message) is None:
                add("criterion-message", crit, "no nr:message",
                    "add nr:message \"<what the criterion requires, one sentence>\"")
            kinds = {g.value(s, NR.conditionKind) for s in g.subjects(NR.conditionOf, crit)}
            on_unmet, on_missing = g.value(crit, NR.onUnmet), g.value(crit, NR.onMissing)
            if on_unmet is None and on_missing is None:
                add("criterion-failure-meaning", crit, "no failure meaning (nr:onUnmet / nr:onMissing)",
                    "add nr:onUnmet nr:Deny and/or nr:onMissing nr:Pend")
            else:
                if NR.UnmetCondition in kinds and on_unmet is None:
                    add("criterion-failure-meaning", crit, "has an unmet condition but no nr:onUnmet",
                        "add nr:onUnmet nr:Deny")
                if NR.MissingCondition in kinds and on_missing is None:
                    add("criterion-failure-meaning", crit, "has a missing condition but no nr:onMissing",
                        "add nr:onMissing nr:Pend")
            cited = list(g.objects(crit, NR.citation))
            passage = g.value(crit, NR.encodesPassage)
            if passage is not None:
                cited += list(g.objects(passage, NR.citation))
            if not cited:
                add("criterion-citation", crit, "no nr:citation (on the criterion or its passage)",
                    "add nr:citation src:<record> naming the policy document it encodes")
                continue
            good = False
            for source in cited:
                title = records.value(source, DCT_TITLE)
                year = (records.value(source, FABIO_YEAR) or records.value(source, DCT_ISSUED)
                        or records.value(source, DCT_DATE))
                if title is None:
                    add("criterion-citation", crit,
                        f"citation {_short(source)} does not resolve to a source with a dcterms:title",
                        "define the record (knowledge/evidence/sources.ttl or the pack) with "
                        "dcterms:title and fabio:hasPublicationYear, or correct the IRI")
                elif year is not None:
                    good = True
            if not good and all(records.value(s, DCT_TITLE) is not None for s in cited):
                add("criterion-citation", crit, "no citation resolves to a source with a publication year",
                    "add fabio:hasPublicationYear to the cited record (or cite a record that has one)")
        # reference ids unique within each version
        for version in sorted(set(g.subjects(NR.versionOf, None))):
            by_ref = defaultdict(list)
            for crit in g.objects(version, NR.hasCriterion):
                ref = g.value(crit, NR.referenceId)
                if ref is not None:
                    by_ref[str(ref)].append(crit)
            for ref, crits in sorted(by_ref.items()):
                if len(crits) > 1:
                    for crit in sorted(crits)[1:]:
                        add("criterion-duplicate-reference-id", crit,
                            f"reference id {ref!r} is also used by "
                            f"{', '.join(_short(c) for c in sorted(crits) if c != crit)} in version "
                            f"{_short(version)}",
                            "give each criterion of a version its own nr:referenceId")
        # a pack without versions: uniqueness across the pack
        if not any(g.subjects(NR.versionOf, None)):
            by_ref = defaultdict(list)
            for crit in criteria:
                ref = g.value(crit, NR.referenceId)
                if ref is not None:
                    by_ref[str(ref)].append(crit)
            for ref, crits in by_ref.items():
                for crit in sorted(crits)[1:]:
                    add("criterion-duplicate-reference-id", crit, f"reference id {ref!r} is used twice",
                        "give each criterion its own nr:referenceId")
    return problems


# ---------------------------------------------------------------------- declared IRIs


_PNAME_RE = re.compile(r"(?<![\w:/#.<?$-])([A-Za-z][\w-]*):((?:[\w%]|[.\-](?=[\w%-]))+)")
_FULL_IRI_RE = re.compile(r"<(https://w3id\.org/necessity/[^>\s]*)>")


def declared_terms(project: Project) -> set[URIRef]:
    """IRIs declared: typed subjects of the ontology, concepts and schemes of the code systems,
    value sets (knowledge and packs)."""
    declared: set[URIRef] = set()
    for f in project.area("ontology"):
        declared.update(s for s in f.graph.subjects(RDF.type, None) if isinstance(s, URIRef))
    for f in project.area("knowledge", "shapes"):
        for cls in (SKOS.Concept, SKOS.ConceptScheme, NR.ValueSet):
            declared.update(s for s in f.graph.subjects(RDF.type, cls) if isinstance(s, URIRef))
    return declared


def _in_project_namespace(iri: str) -> bool:
    """A term IRI in a project namespace; namespace IRIs themselves (ending in / or #, as rules
    write them in STRSTARTS tests) are not terms."""
    if iri.endswith("/") or iri.endswith("#"):
        return False
    return any(iri.startswith(ns) and len(iri) > len(ns) for ns in PROJECT_NAMESPACES)


def check_declared(project: Project) -> list[Problem]:
    """Every project-namespace IRI used in knowledge, shapes and cases (triples and SPARQL text)
    is declared. Scheme IRIs (the code namespace without '/') count as declared when typed."""
    declared = declared_terms(project)
    problems = []
    seen: set[tuple[str, str]] = set()

    def report(f: SourceFile, iri: str, token: str | None, where: str):
        key = (f.rel, iri)
        if key in seen:
            return
        seen.add(key)
        line = f.find(token) if token else f.line_of(URIRef(iri), subject=False)
        suggestion = _suggest(iri, declared)
        problems.append(Problem(
            "undeclared-iri", f"{token or '<' + iri + '>'} ({where}) is not declared in the ontology, "
            "a code system or a value set" + (f"; did you mean {suggestion}?" if suggestion else ""),
            "correct the spelling, or declare the term (ontology/*.ttl, knowledge/codes/*.ttl, "
            "knowledge/value-sets.ttl)", f.rel, line, subject=iri))

    for f in project.area("knowledge", "shapes", "cases"):
        for triple in f.graph:
            for position, node in zip(("subject", "predicate", "object"), triple):
                if isinstance(node, URIRef) and _in_project_namespace(str(node)) and node not in declared:
                    if position == "subject" and f.area != "cases":
                        continue  # a subject written in knowledge or a pack is a definition
                    report(f, str(node), None, f"used as {position}")
        if f.area == "shapes":
            prefixes = pack_prefix_lines(f.graph)
            prefixes.update(f.prefixes)
            for s, p, o in f.graph:
                if p in _QUERY_PROPS and isinstance(o, Literal):
                    _scan_sparql(str(o), prefixes, declared, lambda iri, tok: report(f, iri, tok, "in SPARQL"))
    for f in project.rq_files:
        if f.area == "qc":
            continue  # QC queries name terms to look for, e.g. owl:deprecated
        prefixes = {k: str(v) for k, v in PREFIXES.items()}
        prefixes.update(f.prefixes)
        _scan_sparql(f.text, prefixes, declared, lambda iri, tok: report(f, iri, tok, "in SPARQL"))
    return problems


def _scan_sparql(text: str, prefixes: dict[str, str], declared: set, report) -> None:
    body = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # string literals hold no IRIs
    body = re.sub(r"(?m)#.*$", "", body)  # nor do comments
    for m in _PNAME_RE.finditer(body):
        ns = prefixes.get(m.group(1))
        if ns is None:
            continue
        iri = ns + m.group(2)
        if _in_project_namespace(iri) and URIRef(iri) not in declared:
            report(iri, m.group(0))
    for m in _FULL_IRI_RE.finditer(body):
        iri = m.group(1)
        if _in_project_namespace(iri) and URIRef(iri) not in declared:
            report(iri, f"<{iri}>")


def _suggest(iri: str, declared: set) -> str | None:
    ns = iri[: max(iri.rfind("#"), iri.rfind("/")) + 1]
    candidates = [str(d)[len(ns):] for d in declared if str(d).startswith(ns)]
    close = difflib.get_close_matches(iri[len(ns):], candidates, n=1, cutoff=0.8)
    return _short(URIRef(ns + close[0])) if close else None


# ---------------------------------------------------------------------- QC queries


@dataclass
class QCQuery:
    name: str
    path: Path
    text: str
    description: str
    fix: str
    scope: str = "definitions"


def load_qc_queries(root: Path) -> list[QCQuery]:
    """`qc/*.rq`: each opens with a comment block saying what it finds; a line `# Fix: ...` says
    how to fix a row, a line `# Scope: all` adds the cases to the queried graph."""
    out = []
    for path in sorted((root / "qc").glob("*.rq")) if (root / "qc").exists() else []:
        text = path.read_text(encoding="utf-8")
        description, fix = [], []
        current, scope = description, "definitions"
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            body = line.lstrip("#").strip()
            if body.lower().startswith("scope:"):
                scope = "all" if "all" in body.lower() else "definitions"
                continue
            if body.lower().startswith("fix:"):
                current = fix
                body = body[4:].strip()
            current.append(body)
        out.append(QCQuery(path.stem, path, text, " ".join(x for x in description if x),
                           " ".join(x for x in fix if x) or "see the query's comment", scope))
    return out


def check_qc(project: Project) -> list[Problem]:
    """Run `qc/*.rq`; every row is a problem.

    Rows name the offending node in `?subject` (placed by file and line) and may explain it in
    `?detail`. A query runs over the definitions (ontology + knowledge + packs) unless its header
    has a line `# Scope: all`, which adds the Turtle cases. Queries run in pyoxigraph (already a
    dependency): rdflib's evaluation of the anti-joins ROBOT-style checks need took minutes here
    (engineering notes, "RDF store for analytics"); pyoxigraph takes milliseconds."""
    import pyoxigraph as ox

    queries = load_qc_queries(project.root)
    if not queries:
        return []
    stores = {}

    def store(scope: str):
        if scope not in stores:
            areas = AREAS if scope == "all" else ("ontology", "knowledge", "shapes")
            st = ox.Store()
            st.load(project.graph(*areas).serialize(format="nt", encoding="utf-8"),
                    format=ox.RdfFormat.N_TRIPLES)
            stores[scope] = st
        return stores[scope]

    problems = []
    for q in queries:
        declared = {m.group(1) for m in _PREFIX_RE.finditer(q.text)}
        header = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items() if p not in declared)
        try:
            rows = list(store(q.scope).query(header + q.text))
        except SyntaxError:
            continue  # reported by check_sparql
        for row in rows:
            subject, detail = _ox_term(row["subject"]), _ox_term(row["detail"])
            file, line = project.locate(subject) if subject is not None else (None, None)
            message = f"{_short(subject)}: {detail}" if detail is not None else f"{_short(subject)}"
            problems.append(Problem(f"qc/{q.name}", f"{message} (what this finds: qc/{q.name}.rq)", q.fix,
                                    file, line, subject=str(subject) if subject is not None else None))
    return problems


def _ox_term(term):
    """A pyoxigraph term as rdflib's (IRIs and literals; blank nodes by label)."""
    if term is None:
        return None
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    return Literal(term.value)


# ====================================================================== test


STATUSES = ("met", "unmet", "missing", "not-applicable")


@dataclass
class Expectation:
    policy: str
    outcome: str | None
    verdicts: dict[str, str]
    version: str | None = None


def read_expectations(path: Path, default_policy: str | None = None) -> list[Expectation]:
    """The expectations in a case's `expected.json`.

    Accepted layouts (docs/authoring.md): one object `{"policy", "outcome", "criteria"}`, where
    `criteria` maps reference id -> status or is a list of `{"ref"|"id", "status"}`; a list of
    such objects; or an object keyed by policy id (`{"lcd-l39240": {...}}`) or holding them under
    `"policies"`/`"expectations"`.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable expected.json: {exc}", source=str(path)) from None
    return _expectations(data, default_policy, str(path))


def _expectations(data, policy, source) -> list[Expectation]:
    if isinstance(data, list):
        out = []
        for item in data:
            out += _expectations(item, policy, source)
        return out
    if not isinstance(data, dict):
        raise InputError("expected.json: not an object or list", source=source)
    for key in ("expected", "expectations", "policies", "determinations"):
        if key in data:
            inner = data[key]
            if isinstance(inner, dict):
                return [e for pid, v in inner.items() for e in _expectations(v, pid, source)]
            return _expectations(inner, data.get("policy", policy), source)
    if "outcome" not in data and "criteria" not in data and "verdicts" not in data:
        out = []
        for pid, value in data.items():
            if isinstance(value, dict) and ("outcome" in value or "criteria" in value or "verdicts" in value):
                out += _expectations(value, pid, source)
        return out
    pol = data.get("policy") or data.get("policy_id") or policy
    if isinstance(pol, dict):
        pol = pol.get("id")
    verdicts = {}
    criteria = data.get("criteria", data.get("verdicts", {}))
    if isinstance(criteria, dict):
        for ref, status in criteria.items():
            verdicts[ref] = status.get("status") if isinstance(status, dict) else status
    elif isinstance(criteria, list):
        for item in criteria:
            verdicts[item.get("ref") or item.get("id")] = item.get("status") or item.get("verdict")
    if pol is None:
        return []
    return [Expectation(pol, data.get("outcome"), verdicts, data.get("version"))]


@dataclass
class Mismatch:
    case: str
    policy: str
    what: str  # "outcome" or a reference id
    expected: str | None
    actual: str | None

    def to_dict(self):
        return asdict(self)


@dataclass
class TestReport:
    cases: list[str]
    decided: int
    mismatches: list[Mismatch]
    compared: int
    # policy -> criterion IRI -> {"ref", "label", "versions", status -> [case ids]}
    coverage: dict[str, dict[str, dict]]
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.errors

    def unexercised(self) -> dict[str, list[dict]]:
        """Criteria no case makes met, unmet or missing (always not applicable, or never decided)."""
        out = {}
        for policy, crits in self.coverage.items():
            rows = [c for c in crits.values() if not any(c[s] for s in ("met", "unmet", "missing"))]
            if rows:
                out[policy] = rows
        return out

    def gaps(self) -> dict[str, list[tuple[dict, list[str]]]]:
        """Per pack, criteria with a reachable verdict no case produces. Reachable: unmet if the
        criterion has an unmet condition, missing if it has a missing condition, met if it has
        either (a criterion with only not-applicable conditions is informational)."""
        out = {}
        for policy, crits in self.coverage.items():
            rows = []
            for c in crits.values():
                lacking = [s for s in c["reachable"] if not c[s]]
                if lacking:
                    rows.append((c, lacking))
            if rows:
                out[policy] = sorted(rows, key=lambda r: (reference_sort_key(r[0]["ref"]), r[0]["iri"]))
        return out

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "cases": self.cases,
            "decided": self.decided,
            "compared": self.compared,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "errors": self.errors,
            "coverage": {p: sorted(c.values(), key=lambda r: (reference_sort_key(r["ref"]), r["iri"]))
                         for p, c in sorted(self.coverage.items())},
            "unexercised": {p: [r["iri"] for r in rows] for p, rows in self.unexercised().items()},
            "gaps": {p: [{"iri": r["iri"], "ref": r["ref"], "lacking": lacking} for r, lacking in rows]
                     for p, rows in self.gaps().items()},
        }

    def render_text(self, verbose: bool = False) -> str:
        out = []
        for m in self.mismatches:
            out.append(f"MISMATCH {m.case} [{m.policy}] {m.what}: expected {m.expected}, got {m.actual}")
        for e in self.errors:
            out.append(f"ERROR {e}")
        out.append(f"{len(self.cases)} case(s), {self.decided} determination(s), {self.compared} "
                   f"compared with expected.json, {len(self.mismatches)} mismatch(es), "
                   f"{len(self.errors)} error(s)")
        for policy, crits in sorted(self.coverage.items()):
            out.append("")
            out.append(f"coverage of {policy} (cases per verdict; unmet and missing cases named"
                       f"{'' if verbose else ', --verbose names all'}):")
            for row in sorted(crits.values(), key=lambda r: (reference_sort_key(r["ref"]), r["iri"])):
                counts = " ".join(f"{s}={len(row[s])}" for s in STATUSES)
                out.append(f"  {row['ref']:<12} {counts:<48} versions: {', '.join(row['versions'])}")
                for s in STATUSES:
                    if row[s] and (verbose or s in ("unmet", "missing")):
                        out.append(f"      {s}: {', '.join(row[s])}")
        out.append("")
        unex = self.unexercised()
        if unex:
            out.append("criteria no case exercises (never met, unmet or missing):")
            for policy, rows in sorted(unex.items()):
                for row in sorted(rows, key=lambda r: reference_sort_key(r["ref"])):
                    out.append(f"  {policy} {row['ref']} <{row['iri']}> (versions: {', '.join(row['versions'])})")
        else:
            out.append("every criterion is exercised by at least one case")
        gaps = self.gaps()
        if gaps:
            out.append("reachable verdicts no case produces:")
            for policy, rows in sorted(gaps.items()):
                for row, lacking in rows:
                    out.append(f"  {policy} {row['ref']} <{row['iri']}>: never {', '.join(lacking)}")
        out.append("PASS" if self.passed else "FAIL")
        return "\n".join(out) + "\n"



def find_cases(paths: Iterable[str] | None, root: Path) -> list[Path]:
    """Case inputs (files or folders, see `case.collect_cases`); default `cases/` under the
    project root."""
    return collect_cases(list(paths or []) or [root / "cases"])


def _case_folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def run_tests(reasoner, case_paths: list[Path], policy: str | None = None,
              all_versions: bool = False, cache: "DeterminationCache | None" = None) -> TestReport:
    """Decide every case, compare with `expected.json`, and tally criterion coverage.

    Each case is decided under every pack in scope (`policy`, else all packs), under the version
    in force on its service date (and, with `all_versions`, under every other version too: for
    coverage only). Expectations are compared where `expected.json` names the pack.
    """
    kb = reasoner.kb
    policies = [policy] if policy else sorted(kb.packs)
    for pid in policies:
        kb.pack(pid)  # unknown policy -> InputError
    coverage: dict[str, dict[str, dict]] = {}
    for pid in policies:
        pack = kb.pack(pid)
        rows = coverage.setdefault(pid, {})
        for v in pack.versions:
            for crit in v.criteria:
                kinds = {pack.graph.value(sh, NR.conditionKind) for sh in pack.graph.subjects(NR.conditionOf, crit)}
                reachable = [s for s, k in (("unmet", NR.UnmetCondition), ("missing", NR.MissingCondition))
                             if k in kinds]
                row = rows.setdefault(str(crit), {
                    "iri": str(crit), "ref": str(pack.graph.value(crit, NR.referenceId) or _short(crit)),
                    "label": str(pack.graph.value(crit, RDFS.label) or ""), "versions": [],
                    "reachable": (["met"] + reachable) if reachable else [],
                    **{s: [] for s in STATUSES}})
                row["versions"].append(v.version)
    cache = cache or DeterminationCache(reasoner)
    mismatches, errors, names = [], [], []
    decided = compared = 0
    for path in case_paths:
        folder = _case_folder(path)
        try:
            case = cache.case(path)
        except Exception as exc:  # a broken case is reported, the others still run
            errors.append(f"{path}: {exc}")
            continue
        names.append(case.id)
        expected_path = folder / "expected.json"
        expectations = read_expectations(expected_path) if expected_path.exists() else []
        by_policy = {e.policy: e for e in expectations}
        for pid in policies:
            pack = kb.pack(pid)
            exp = by_policy.get(pid)
            try:
                d = cache.determine(path, pid, exp.version if exp else None)
            except Exception as exc:
                errors.append(f"{case.id} [{pid}]: {exc}")
                continue
            decided += 1
            _tally(coverage[pid], d, case.id)
            if all_versions:
                for v in pack.versions:
                    if v.version != d.policy.version:
                        _tally(coverage[pid], cache.determine(path, pid, v.version), f"{case.id}@{v.version}")
                        decided += 1
            if exp is None:
                continue
            compared += 1
            if exp.outcome is not None and exp.outcome != d.outcome:
                mismatches.append(Mismatch(case.id, pid, "outcome", exp.outcome, d.outcome))
            actual = d.verdicts()
            for ref, status in sorted(exp.verdicts.items(), key=lambda kv: reference_sort_key(kv[0])):
                if actual.get(ref) != status:
                    mismatches.append(Mismatch(case.id, pid, ref, status, actual.get(ref)))
    return TestReport(names, decided, mismatches, compared, coverage, errors)


def _tally(rows: dict[str, dict], d, label: str) -> None:
    for c in d.criteria:
        row = rows.get(c.id)
        if row is not None and label not in row[c.status]:
            row[c.status].append(label)


# ====================================================================== diff


def parse_policy_ref(text: str) -> tuple[str, str | None]:
    """`POLICY[@VERSION]` -> (policy id, version or None)."""
    policy, _, version = text.partition("@")
    if not policy:
        raise InputError(f"bad policy reference {text!r} (expected POLICY or POLICY@VERSION)")
    return policy, version or None


@dataclass
class ShapeChange:
    ref: str
    change: str  # "changed" | "added" | "removed"
    from_shapes: list[str]
    to_shapes: list[str]
    details: list[str]

    def to_dict(self):
        return asdict(self)


@dataclass
class CaseDiff:
    case: str
    from_version: str
    to_version: str
    from_outcome: str
    to_outcome: str
    changed: list[dict]  # {"ref", "from", "to"}

    @property
    def flipped(self) -> bool:
        return self.from_outcome != self.to_outcome

    def to_dict(self):
        return {**asdict(self), "flipped": self.flipped}


@dataclass
class DiffReport:
    from_ref: str
    to_ref: str
    cases: list[CaseDiff]
    shapes: list[ShapeChange]

    def flips(self) -> list[CaseDiff]:
        return [c for c in self.cases if c.flipped]

    def to_dict(self):
        return {
            "from": self.from_ref,
            "to": self.to_ref,
            "flipped": [c.case for c in self.flips()],
            "cases": [c.to_dict() for c in self.cases],
            "shape_changes": [s.to_dict() for s in self.shapes],
        }

    def render_text(self) -> str:
        out = [f"diff {self.from_ref} -> {self.to_ref}: {len(self.cases)} case(s), "
               f"{len(self.flips())} outcome flip(s), "
               f"{sum(bool(c.changed) for c in self.cases)} case(s) with changed verdicts"]
        out.append("")
        out.append("outcome flips:")
        flips = self.flips()
        for c in flips:
            out.append(f"  {c.case}: {c.from_outcome} -> {c.to_outcome}")
            for ch in c.changed:
                if not _quiet(ch):
                    out.append(f"      {ch['ref']}: {ch['from'] or '(absent)'} -> {ch['to'] or '(absent)'}")
        if not flips:
            out.append("  (none)")
        others = [c for c in self.cases if not c.flipped and any(not _quiet(ch) for ch in c.changed)]
        out.append("")
        out.append("changed verdicts, same outcome:")
        for c in others:
            changes = ", ".join(f"{ch['ref']} {ch['from'] or '(absent)'} -> {ch['to'] or '(absent)'}"
                                for ch in c.changed if not _quiet(ch))
            out.append(f"  {c.case} ({c.to_outcome}): {changes}")
        if not others:
            out.append("  (none)")
        quiet = defaultdict(lambda: defaultdict(int))
        for c in self.cases:
            for ch in c.changed:
                if _quiet(ch):
                    side = "only in --to" if ch["from"] is None else "only in --from"
                    quiet[(ch["ref"], side)][ch["to"] or ch["from"]] += 1
        if quiet:
            out.append("")
            out.append("criteria in one side only, where they pass (met or not applicable):")
            for (ref, side), counts in sorted(quiet.items(), key=lambda kv: reference_sort_key(kv[0][0])):
                text = ", ".join(f"{status} in {n} case(s)" for status, n in sorted(counts.items()))
                out.append(f"  {ref} ({side}): {text}")
        out.append("")
        out.append("criteria whose shapes differ:")
        for s in self.shapes:
            names = " | ".join(x for x in (", ".join(s.from_shapes), ", ".join(s.to_shapes)) if x)
            out.append(f"  {s.ref} ({s.change}): {names}")
            for d in s.details:
                out.append(f"      {d}")
        if not self.shapes:
            out.append("  (none)")
        return "\n".join(out) + "\n"


def _quiet(change: dict) -> bool:
    """A criterion present on one side only, passing there: summarised, not listed per case."""
    one_sided = change["from"] is None or change["to"] is None
    return one_sided and (change["from"] or change["to"]) in ("met", "not-applicable")


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


def run_diff(reasoner, case_paths: list[Path], from_ref: str, to_ref: str,
             cache: DeterminationCache | None = None) -> DiffReport:
    """Decide the cases under two packs or two versions; report flips, changed verdicts and the
    criteria whose condition shapes differ (rdflib.compare.graph_diff per criterion)."""
    kb = reasoner.kb
    (p1, v1), (p2, v2) = parse_policy_ref(from_ref), parse_policy_ref(to_ref)
    pack1, pack2 = kb.pack(p1), kb.pack(p2)
    if v1:
        pack1.version(v1)
    if v2:
        pack2.version(v2)
    cache = cache or DeterminationCache(reasoner)
    cases = []
    used_versions: set[tuple[str, str]] = set()
    for path in case_paths:
        case = cache.case(path)
        a = cache.determine(path, p1, v1)
        b = cache.determine(path, p2, v2)
        used_versions.add((a.policy.version, b.policy.version))
        va, vb = a.verdicts(), b.verdicts()
        changed = [{"ref": ref, "from": va.get(ref), "to": vb.get(ref)}
                   for ref in sorted(set(va) | set(vb), key=reference_sort_key) if va.get(ref) != vb.get(ref)]
        cases.append(CaseDiff(case.id, f"{p1}@{a.policy.version}", f"{p2}@{b.policy.version}",
                              a.outcome, b.outcome, changed))
    version_pairs = sorted(used_versions) or [(pack1.version(v1).version, pack2.version(v2).version)]
    shapes: dict[str, ShapeChange] = {}
    for va_name, vb_name in version_pairs:
        for change in shape_changes(pack1, pack1.version(va_name), pack2, pack2.version(vb_name)):
            shapes.setdefault(change.ref, change)
    return DiffReport(from_ref, to_ref, cases, sorted(shapes.values(), key=lambda s: reference_sort_key(s.ref)))


def _pack_namespace(pack) -> str:
    iri = str(pack.policy_iri)
    cut = max(iri.rfind("/"), iri.rfind("#"))
    return iri[: cut + 1]


def _bundle(graph: Graph, node, out: Graph, seen: set) -> None:
    """The node's triples, following blank nodes (a concise bounded description)."""
    if node in seen:
        return
    seen.add(node)
    for p, o in graph.predicate_objects(node):
        out.add((node, p, o))
        if isinstance(o, BNode):
            _bundle(graph, o, out, seen)


def _normalised(graph: Graph, ns: str, renames: dict) -> Graph:
    """Rename pack-local IRIs so that two packs (or two versions) compare by content."""
    def n(x):
        if x in renames:
            return renames[x]
        if isinstance(x, URIRef) and str(x).startswith(ns):
            return URIRef("urn:pack:" + str(x)[len(ns):])
        return x
    out = Graph()
    for s, p, o in graph:
        out.add((n(s), n(p), n(o)))
    return out


def shape_changes(pack1, version1, pack2, version2) -> list[ShapeChange]:
    """Criteria (matched by reference id) whose description or condition shapes differ.

    Each criterion and each of its condition shapes is compared as a graph (its triples and the
    blank nodes it holds, e.g. `sh:sparql [...]`) with `rdflib.compare`, after renaming the pack's
    own namespace, so that a derived pack or another version compares by content."""

    def by_ref(pack, version):
        out = {}
        for crit in version.criteria:
            out[str(pack.graph.value(crit, NR.referenceId) or crit)] = crit
        return out

    a, b = by_ref(pack1, version1), by_ref(pack2, version2)
    ns1, ns2 = _pack_namespace(pack1), _pack_namespace(pack2)
    changes = []
    for ref in sorted(set(a) | set(b), key=reference_sort_key):
        if ref not in b:
            changes.append(ShapeChange(ref, "removed", _shape_names(pack1, a[ref]), [], []))
            continue
        if ref not in a:
            changes.append(ShapeChange(ref, "added", [], _shape_names(pack2, b[ref]), []))
            continue
        ca, cb = a[ref], b[ref]
        shapes_a = sorted(pack1.graph.subjects(NR.conditionOf, ca))
        shapes_b = sorted(pack2.graph.subjects(NR.conditionOf, cb))
        pairs = _pair_shapes(pack1, shapes_a, ns1, pack2, shapes_b, ns2)
        details, names_a, names_b = [], [], []
        crit_a = _normalised(_described(pack1.graph, [ca]), ns1, {ca: URIRef("urn:criterion")})
        crit_b = _normalised(_described(pack2.graph, [cb]), ns2, {cb: URIRef("urn:criterion")})
        if not _same(crit_a, crit_b):
            details += _triple_details("criterion", crit_a, crit_b)
        for sa, sb in pairs:
            ga = _normalised(_described(pack1.graph, [sa]) if sa else Graph(), ns1,
                             {sa: URIRef("urn:shape"), ca: URIRef("urn:criterion")})
            gb = _normalised(_described(pack2.graph, [sb]) if sb else Graph(), ns2,
                             {sb: URIRef("urn:shape"), cb: URIRef("urn:criterion")})
            if _same(ga, gb):
                continue
            names_a += [_short_pack(pack1, sa)] if sa else []
            names_b += [_short_pack(pack2, sb)] if sb else []
            label = _short_pack(pack2, sb) if sb else _short_pack(pack1, sa)
            details += _triple_details(label, ga, gb)
        if details:
            changes.append(ShapeChange(ref, "changed", names_a, names_b, details))
    return changes


def _described(graph: Graph, nodes) -> Graph:
    out, seen = Graph(), set()
    for node in nodes:
        _bundle(graph, node, out, seen)
    return out


def _same(a: Graph, b: Graph) -> bool:
    from rdflib.compare import isomorphic

    return isomorphic(a, b)


def _triple_details(label: str, a: Graph, b: Graph, limit: int = 8) -> list[str]:
    """What differs between two descriptions: for literals that changed, a word-level diff."""
    from rdflib.compare import graph_diff, to_isomorphic

    _, only_a, only_b = graph_diff(to_isomorphic(a), to_isomorphic(b))
    by_pred_a, by_pred_b = defaultdict(list), defaultdict(list)
    for s, p, o in only_a:
        by_pred_a[p].append(o)
    for s, p, o in only_b:
        by_pred_b[p].append(o)
    out = []
    for p in sorted(set(by_pred_a) | set(by_pred_b), key=str):
        olds, news = sorted(by_pred_a.get(p, []), key=str), sorted(by_pred_b.get(p, []), key=str)
        if len(olds) == 1 and len(news) == 1 and isinstance(olds[0], Literal) and isinstance(news[0], Literal):
            out.append(f"{label} {_short(p)}: {_word_diff(str(olds[0]), str(news[0]))}")
            continue
        for o in olds:
            if not isinstance(o, BNode):
                out.append(f"{label} {_short(p)} - {_abbrev(o)}")
        for o in news:
            if not isinstance(o, BNode):
                out.append(f"{label} {_short(p)} + {_abbrev(o)}")
    return out[:limit]


def _abbrev(node) -> str:
    if isinstance(node, URIRef) and str(node).startswith("urn:pack:"):
        return "<pack>:" + str(node)[len("urn:pack:"):]  # a pack-local IRI, namespace renamed
    text = " ".join(str(node).split()) if isinstance(node, Literal) else _short(node)
    return text if len(text) <= 100 else text[:97] + "..."


def _word_diff(old: str, new: str) -> str:
    """The changed tokens of two texts: `[-old-]{+new+}` with a little context."""
    a, b = re.findall(r'"[^"]*"(?:\^\^\S+)?|\S+', old), re.findall(r'"[^"]*"(?:\^\^\S+)?|\S+', new)
    parts = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        before = " ".join(b[max(0, j1 - 3):j1])
        parts.append(f"...{before} [-{' '.join(a[i1:i2])}-]{{+{' '.join(b[j1:j2])}+}}")
    text = " ".join(parts) or "(whitespace only)"
    return text if len(text) <= 300 else text[:297] + "..."


def _pair_shapes(pack1, shapes_a, ns1, pack2, shapes_b, ns2):
    """Pair condition shapes of two criteria: same local name (after the pack namespace), then
    the rest by condition kind in name order; unpaired ones stand alone."""
    def local(s, ns):
        return str(s)[len(ns):] if str(s).startswith(ns) else str(s)

    pairs, rest_a, rest_b = [], list(shapes_a), list(shapes_b)
    for sa in list(rest_a):
        match = next((sb for sb in rest_b if local(sb, ns2) == local(sa, ns1)), None)
        if match is not None:
            pairs.append((sa, match))
            rest_a.remove(sa)
            rest_b.remove(match)
    for sa in list(rest_a):
        kind = pack1.graph.value(sa, NR.conditionKind)
        match = next((sb for sb in rest_b if pack2.graph.value(sb, NR.conditionKind) == kind), None)
        if match is not None:
            pairs.append((sa, match))
            rest_a.remove(sa)
            rest_b.remove(match)
    pairs += [(sa, None) for sa in rest_a] + [(None, sb) for sb in rest_b]
    return pairs


def _shape_names(pack, crit) -> list[str]:
    return [_short_pack(pack, s) for s in sorted(pack.graph.subjects(NR.conditionOf, crit))]


def _short_pack(pack, node) -> str:
    ns = _pack_namespace(pack)
    text = str(node)
    return f"{pack.policy_id}:{text[len(ns):]}" if text.startswith(ns) else _short(node)


# ====================================================================== owlready2 round trip


def ontology_round_trip(root: Path | str | None = None):
    """Load the merged ontology into owlready2, save, reload, save (engines/owl.py.round_trip)."""
    from .engines import owl
    from .kb import project_root

    root = Path(root) if root else project_root()
    return owl.round_trip(owl.merge_modules(owl.ontology_paths(root)))
