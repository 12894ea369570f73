"""`reasoner check`: run every check on a project and collect their problems (see the package
docstring for the list). The SPARQL, HermiT, SHACL-SHACL and criterion checks live here; the
declared-IRI check in `declared.py`, the QC queries in `qc.py`."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS

from ..errors import InputError
from ..vocab import NR, PREFIXES
from .declared import check_declared
from .engines import check_engines
from .problems import (
    DCT_DATE,
    DCT_ISSUED,
    DCT_TITLE,
    FABIO_YEAR,
    INFO,
    WARNING,
    CheckReport,
    Problem,
)
from .project import _PREFIX_RE, _QUERY_PROPS, Project, _named_holder, _short, pack_prefix_lines
from .qc import check_qc


def run_check(root: Path | str | None = None, paths: Iterable[str] | None = None,
              hermit: bool = True) -> CheckReport:
    """Run every check on the project at `root` (default: NECESSITY_HOME or the repository).

    `paths` (files or folders) restrict the report to problems in those files; the whole project
    is still loaded, since declarations and citations live in other files. HermiT runs only when
    `hermit` is true and the ontology is in scope.
    """
    from ..kb import project_root

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
    problems += timed("engines", check_engines, project)
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
    from ..engines import owl

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
    from ..engines.shacl import validate_against_meta

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
