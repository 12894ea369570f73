"""Check 6 of `reasoner check`: the ROBOT-style QC queries `qc/*.rq`, each of which must
return no rows (kind `qc/<name>`), run on pyoxigraph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rdflib import BNode, Literal, URIRef

from ..vocab import PREFIXES
from .problems import AREAS, Problem
from .project import _PREFIX_RE, Project, _short

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
