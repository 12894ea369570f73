"""The one adapter around owlready2 and its bundled HermiT reasoner (pinned to owlready2 0.51).

What it does, and the traps it works around (owlready2):

* owlready2 does not read Turtle: the ontology modules (`ontology/*.ttl`) are parsed with rdflib,
  merged into one graph and handed to owlready2 as N-Triples.
* The merged graph keeps one ontology header: the module headers (`owl:Ontology` with their
  version IRIs) are replaced by one header for the merged ontology, so that owlready2 does not
  see several ontologies in one file.
* HermiT runs on the system Java (17); it refuses datatypes outside the OWL 2 datatype map
  (`xsd:date`, OWL 2 Structural Specification §4 "Datatype Maps"). That failure is reported as
  an error, never ignored (`ignore_unsupported_datatypes` stays off).
* Each HermiT call costs 1-1.6 s (JVM start): use it offline (`check`, tests), never per case.
* No Java: the result says so (`status == "java-unavailable"`); nothing passes silently.

Consistency and satisfiability are those of OWL 2 Direct Semantics (OWL 2 Direct Semantics §2.5:
an ontology is consistent if it has a model; a class is unsatisfiable if every model interprets it
as empty, i.e. it is equivalent to owl:Nothing).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import owlready2
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, XSD

MERGED_ONTOLOGY_IRI = "https://w3id.org/necessity/ontology/merged"

CONSISTENT = "consistent"
INCONSISTENT = "inconsistent"
JAVA_UNAVAILABLE = "java-unavailable"
ERROR = "error"


@dataclass(frozen=True)
class ReasonerResult:
    """What a HermiT run found.

    `status` is one of "consistent", "inconsistent", "java-unavailable", "error";
    `consistent` is None when HermiT could not decide (no Java, or a Java/HermiT error);
    `unsatisfiable` lists the IRIs of named classes equivalent to owl:Nothing (sorted);
    `message` says in one line what happened (the Java error text on "error").
    """

    status: str
    consistent: bool | None
    unsatisfiable: tuple[str, ...] = ()
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True only for a consistent ontology with no unsatisfiable class."""
        return self.status == CONSISTENT and not self.unsatisfiable


@dataclass(frozen=True)
class RoundTripResult:
    """Triple counts of a graph before owlready2, after one save, and after reload and save.

    owlready2 may add declarations (e.g. an ontology header it writes itself), so `saved` can
    exceed `original`; what matters is that nothing is lost and that a reload is stable.
    """

    original: int
    saved: int
    reloaded: int
    lost: tuple[str, ...] = field(default=())
    added: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no triple was lost and the reload gave the same count as the first save."""
        return not self.lost and self.saved == self.reloaded


# ---------------------------------------------------------------- loading


def ontology_paths(root: Path) -> list[Path]:
    """The ontology modules: every `ontology/*.ttl` under the project root, sorted by name."""
    return sorted((Path(root) / "ontology").glob("*.ttl"))


def merge_modules(paths: Iterable[Path | str]) -> Graph:
    """Parse the Turtle modules and merge them into one graph with a single ontology header.

    The module headers (subjects typed `owl:Ontology`, with their annotations) are dropped and
    replaced by `<MERGED_ONTOLOGY_IRI> a owl:Ontology`; every other triple is kept as written.
    """
    graph = Graph()
    for path in paths:
        graph.parse(str(path), format="turtle")
    for header in set(graph.subjects(RDF.type, OWL.Ontology)):
        graph.remove((header, None, None))
    graph.add((URIRef(MERGED_ONTOLOGY_IRI), RDF.type, OWL.Ontology))
    return graph


def load_world(graph: Graph) -> tuple[owlready2.World, owlready2.Ontology]:
    """Load an rdflib graph into a fresh owlready2 World (via N-Triples: no Turtle reader)."""
    world = owlready2.World()
    data = graph.serialize(format="nt", encoding="utf-8")
    onto = world.get_ontology(MERGED_ONTOLOGY_IRI).load(
        fileobj=io.BytesIO(data), format="ntriples"
    )
    return world, onto


def _world_triples(world: owlready2.World) -> Graph:
    """Serialise a World as N-Triples and parse it back with rdflib."""
    buffer = io.BytesIO()
    world.save(buffer, format="ntriples")
    graph = Graph()
    graph.parse(data=buffer.getvalue().decode("utf-8"), format="nt")
    return graph


# ---------------------------------------------------------------- HermiT


def java_available() -> tuple[bool, str]:
    """Whether the Java owlready2 calls (`owlready2.JAVA_EXE`) can run, with its version line."""
    exe = owlready2.JAVA_EXE
    path = exe if os.path.isabs(exe) else shutil.which(exe)
    if not path or not os.path.exists(path):
        return False, f"java not found (owlready2.JAVA_EXE = {exe!r})"
    try:
        out = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"java at {path} does not run: {exc}"
    if out.returncode != 0:
        return False, f"java at {path} exited with {out.returncode}"
    first = (out.stderr or out.stdout).strip().splitlines()
    return True, first[0] if first else path


def run_hermit(graph: Graph) -> ReasonerResult:
    """Classify `graph` with HermiT: consistency and the named classes equivalent to owl:Nothing.

    Never passes silently: no Java gives status "java-unavailable", a Java or HermiT failure
    (e.g. an `xsd:date` range, outside the OWL 2 datatype map) gives status "error" with the
    Java message.
    """
    has_java, java_message = java_available()
    if not has_java:
        return ReasonerResult(JAVA_UNAVAILABLE, None, message=java_message)
    started = time.monotonic()
    try:
        world, _ = load_world(graph)
    except Exception as exc:  # owlready2 raises several types on unreadable input
        return ReasonerResult(ERROR, None, message=f"owlready2 could not load the graph: {exc}")
    try:
        owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
    except owlready2.OwlReadyInconsistentOntologyError:
        return ReasonerResult(
            INCONSISTENT,
            False,
            message="HermiT: the ontology is inconsistent (it has no model)",
            seconds=time.monotonic() - started,
        )
    except owlready2.OwlReadyJavaError as exc:
        text = " ".join(str(exc).split())
        return ReasonerResult(ERROR, None, message=f"HermiT failed: {text[:2000]}",
                              seconds=time.monotonic() - started)
    except FileNotFoundError as exc:
        return ReasonerResult(JAVA_UNAVAILABLE, None, message=f"java not found: {exc}")
    unsatisfiable = tuple(
        sorted(c.iri for c in world.inconsistent_classes() if c is not owlready2.Nothing)
    )
    message = (
        "HermiT: consistent, no unsatisfiable class"
        if not unsatisfiable
        else f"HermiT: consistent, {len(unsatisfiable)} unsatisfiable class(es)"
    )
    return ReasonerResult(CONSISTENT, True, unsatisfiable, message,
                          seconds=time.monotonic() - started)


def check_ontology(root: Path) -> ReasonerResult:
    """Merge `ontology/*.ttl` under `root` and run HermiT on the result."""
    paths = ontology_paths(root)
    if not paths:
        return ReasonerResult(ERROR, None, message=f"no ontology/*.ttl under {root}")
    return run_hermit(merge_modules(paths))


# ---------------------------------------------------------------- round trip


def _normalised(graph: Graph) -> set:
    """Ground triples with plain literals typed xsd:string (RDF 1.1 Concepts §3.3: the same
    literal), as owlready2 writes them; triples with blank nodes are left out (renamed on save)."""
    out = set()
    for s, p, o in graph:
        if isinstance(s, BNode) or isinstance(o, BNode):
            continue
        if isinstance(o, Literal) and o.datatype is None and o.language is None:
            o = Literal(str(o), datatype=XSD.string)
        out.add((s, p, o))
    return out


def round_trip(graph: Graph) -> RoundTripResult:
    """Load `graph` into owlready2, save it, reload the saved triples, save again; count triples.

    `lost` lists (up to 20, sorted) ground triples of `graph` that the first save no longer
    holds, plain and xsd:string literals counted as equal (RDF 1.1); `added` those it invented.
    """
    world, _ = load_world(graph)
    saved = _world_triples(world)
    world2, _ = load_world(saved)
    reloaded = _world_triples(world2)
    before, after = _normalised(graph), _normalised(saved)
    lost = sorted(" ".join(x.n3() for x in t) for t in before - after)[:20]
    added = sorted(" ".join(x.n3() for x in t) for t in after - before)[:20]
    return RoundTripResult(len(graph), len(saved), len(reloaded), tuple(lost), tuple(added))
