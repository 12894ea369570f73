"""The one adapter around pySHACL (pinned to 0.40.x: its Validator constructor changed in 0.40).

Two ways to validate, giving the same results (a test compares them on every case):

* `validate_reference`: `pyshacl.validate()` as documented, nothing reused between calls.
* `ShapesRunner.validate`: the fast path of the engineering notes — the parsed `ShapesGraph`
  is reused across cases, and the data graph is a `PreparedQueryGraph` that caches
  `rdflib.plugins.sparql.prepareQuery(text)` by query text. pySHACL re-parses the text of
  every `sh:select` for every focus node; with the cache each SPARQL constraint is parsed once
  per process. pySHACL has no public hook for either, hence this module.

pySHACL itself is imported by the functions that run it, not with this module: the compiled
engine uses the result classes below without loading it.

Results keep SHACL's structure (SHACL 3.6: focus node, source shape, value, severity, message):
callers never parse report text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SH

if TYPE_CHECKING:
    from pyshacl.shapes_graph import ShapesGraph

_PREPARED: dict[str, Any] = {}


class PreparedQueryGraph(Graph):
    """An rdflib Graph whose `query()` reuses prepared queries, keyed by their text."""

    def query(self, query_object, processor="sparql", result="sparql", initNs=None,  # noqa: N803
              initBindings=None, use_store_provided=True, **kwargs):  # noqa: N803
        if isinstance(query_object, str) and not initNs:
            query_object = prepared(query_object)
        return super().query(query_object, processor, result, initNs, initBindings,
                             use_store_provided, **kwargs)


def prepared(text: str):
    """`prepareQuery(text)`, once per process (and across processes in the disk cache,
    reasoner/cache.py). Keyed with its PREFIX lines sorted: pySHACL writes them in the order
    of a set, which changes with PYTHONHASHSEED, so the same query would miss the cache."""
    key = _query_key(text)
    query = _PREPARED.get(key)
    if query is None:
        from rdflib.plugins.sparql import prepareQuery

        query = _PREPARED[key] = prepareQuery(text)
    return query


def _query_key(text: str) -> str:
    lines = text.split("\n")
    head = 0
    while head < len(lines) and (lines[head].startswith("PREFIX ") or not lines[head].strip()):
        head += 1
    names = [line.split(":", 1)[0] for line in lines[:head] if line.strip()]
    if len(names) != len(set(names)):  # a prefix declared twice: the order matters
        return text
    return "\n".join(sorted(lines[:head]) + lines[head:])


@dataclass(frozen=True)
class ShapeResult:
    """One SHACL validation result (SHACL 3.6.2), as data."""

    focus_node: Any
    source_shape: Any
    severity: URIRef
    value: Any
    message: str | None
    result_path: Any = None
    #: the compiled engine's constraint that gave it (its report graph names the constraint)
    constraint: Any = field(default=None, compare=False, repr=False)


@dataclass
class ShapesReport:
    conforms: bool
    results: list[ShapeResult]
    graph: Graph
    text: str


_OPTIONS = {
    "inference": "none",
    "inplace": True,
    "advanced": False,
    "abort_on_first": False,
    "allow_infos": False,
    "allow_warnings": False,
    "max_validation_depth": 15,
}


class ShapesRunner:
    """Validates many data graphs against one shapes graph, parsing the shapes once."""

    def __init__(self, shapes: Graph):
        self.shapes = shapes
        self._shapes_graph: ShapesGraph | None = None

    def validate(self, data: Graph) -> ShapesReport:
        from pyshacl.graph_abstraction import DataGraph
        from pyshacl.validator import Validator

        data_graph = DataGraph.from_rdflib(data)
        validator = Validator(data_graph, shacl_graph=self.shapes, options=dict(_OPTIONS))
        if self._shapes_graph is None:
            self._shapes_graph = validator.shacl_graph
        else:
            validator.shacl_graph = self._shapes_graph
        conforms, report, text = validator.run()
        return _report(conforms, report, text)

    def warm(self) -> None:
        """Parse the shapes and prepare the query of every SPARQL-based constraint now, as
        pySHACL will write it (SHACL 5.3.1: prefixes, then pre-bound `$this`), so that the
        warmed state written to the disk cache holds them."""
        from pyshacl.constraints.sparql.sparql_based_constraints import (
            SPARQLBasedConstraint,
        )

        self.validate(PreparedQueryGraph())  # builds and keeps the parsed ShapesGraph
        for shape in self._shapes_graph.shapes:
            if (shape.node, SH.sparql, None) not in self.shapes:
                continue
            for helper in SPARQLBasedConstraint(shape).sparql_constraints:
                _, text = helper.pre_bind_variables(shape.node)
                prepared(helper.apply_prefixes(text))


def validate_reference(data: Graph, shapes: Graph, inference: str = "none") -> ShapesReport:
    """pySHACL as documented, one call per case (the baseline the fast path is checked against)."""
    import pyshacl

    conforms, report, text = pyshacl.validate(
        data, shacl_graph=shapes, inference=inference, advanced=False
    )
    return _report(conforms, report, text)


def validate_against_meta(shapes: Graph) -> ShapesReport:
    """Validate `shapes` as data against pySHACL's bundled SHACL-SHACL graph."""
    from pyshacl.entrypoints import meta_validate

    conforms, report, text = meta_validate(shapes, inference="none")
    return _report(conforms, report, text)


def _report(conforms: bool, report: Graph, text: str) -> ShapesReport:
    results = []
    for node in report.subjects(RDF.type, SH.ValidationResult):
        message = report.value(node, SH.resultMessage)
        results.append(
            ShapeResult(
                focus_node=report.value(node, SH.focusNode),
                source_shape=report.value(node, SH.sourceShape),
                severity=report.value(node, SH.resultSeverity),
                value=report.value(node, SH.value),
                message=str(message) if message is not None else None,
                result_path=report.value(node, SH.resultPath),
            )
        )
    results.sort(key=lambda r: (str(r.source_shape), str(r.focus_node), str(r.value)))
    return ShapesReport(bool(conforms), results, report, text)
