#!/usr/bin/env python3
"""Derive a policy pack (or a version of a pack) from another pack by a small declarative list of
changes, so that the derived criteria stay in sync when the source pack changes.

    python scripts/derive_pack.py scripts/derive/commercial-esi-example.toml
    python scripts/derive_pack.py scripts/derive/example-policy-versions.toml
    python scripts/derive_pack.py --check scripts/derive/*.toml   # exit 1 if an output is stale

Why a generated copy: pySHACL does not follow owl:imports here, and a pack is one folder of Turtle
files, so a variant of a pack is its own folder. Writing it by hand would drift from the source;
deriving it keeps every unchanged criterion identical and makes the changes reviewable in one
small spec file. Every substitution must match exactly once in the source, so a change to the
source pack that touches a derived threshold makes the script fail instead of silently producing
a pack that no longer says what the spec says.

Two modes (docs/authoring.md, "Deriving a pack"):

* `mode = "pack"`: copy every Turtle file of `source` (except `exclude`) into one graph, keep the
  criteria of `keep_version` only, rename the source namespace to `namespace_to`, replace the
  policy and version nodes with the spec's, apply `[[substitute]]` (literal text in a named
  node's property) and `[[set]]` (replace a property's values), add `add_criteria` (defined in a
  hand-written Turtle file of the target folder) to the version, and write `output`.
  `[policy] illustrative_only = true` marks the pack nr:illustrativeOnly (never selected by
  service-code routing). Each `[[older_version]]` adds a further version of the derived pack,
  built from the spec's version as in version mode (its `[version]` and `[[revise]]`).
* `mode = "version"`: write only the triples of a new version of the source policy: the version
  node listing the criteria of `base_version`, where each `[[revise]]` criterion is replaced by a
  copy (new IRI = old + `suffix`, same reference id) whose condition shapes are copied too and
  then changed by the revision's substitutions.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, XSD

ROOT = Path(__file__).resolve().parent.parent
NR = "https://w3id.org/necessity/ontology#"
SH = "http://www.w3.org/ns/shacl#"
PREFIXES = {
    "nr": NR, "sh": SH, "rdf": str(RDF), "rdfs": str(RDFS), "owl": str(OWL), "xsd": str(XSD),
    "dcterms": "http://purl.org/dc/terms/", "fabio": "http://purl.org/spar/fabio/",
    "src": "https://w3id.org/necessity/source/", "cpt": "https://w3id.org/necessity/code/cpt/",
    "vs": "https://w3id.org/necessity/valueset/",
}


class DeriveError(Exception):
    pass


def expand(term: str, spec_prefixes: dict[str, str]) -> URIRef:
    """A prefixed name or an IRI of the spec -> URIRef."""
    if term.startswith("<") and term.endswith(">"):
        return URIRef(term[1:-1])
    if "://" in term:
        return URIRef(term)
    prefix, _, local = term.partition(":")
    ns = spec_prefixes.get(prefix)
    if ns is None:
        raise DeriveError(f"unknown prefix in {term!r}")
    return URIRef(ns + local)


def value(text, spec_prefixes) -> URIRef | Literal:
    """A spec value: a prefixed name/IRI (no spaces) is an IRI, anything else a plain literal."""
    if isinstance(text, str) and " " not in text and (":" in text) and not text.startswith('"'):
        try:
            return expand(text, spec_prefixes)
        except DeriveError:
            pass
    return Literal(text)


def load_folder(folder: Path, exclude: list[str]) -> Graph:
    graph = Graph()
    for path in sorted(folder.glob("*.ttl")):
        if path.name in exclude:
            continue
        graph.parse(path, format="turtle")
    return graph


def substitute(graph: Graph, node: URIRef, prop: URIRef, old: str, new: str) -> None:
    """Replace `old` by `new` in the one literal of node/prop (the property may sit on a blank
    node the node holds, e.g. sh:select in sh:sparql [ ... ]); it must occur exactly once."""
    holders, stack, seen = [], [node], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        holders += [(current, o) for o in graph.objects(current, prop)]
        stack += [o for o in graph.objects(current) if isinstance(o, BNode)]
    if len(holders) != 1 or not isinstance(holders[0][1], Literal):
        raise DeriveError(f"{node} {prop}: expected exactly one literal, found {len(holders)}")
    node, literal = holders[0]
    text = str(literal)
    count = text.count(old)
    if count != 1:
        raise DeriveError(f"{node} {prop}: {old!r} occurs {count} times (expected once); "
                          "the source pack changed: update the spec")
    graph.remove((node, prop, literal))
    graph.add((node, prop, Literal(text.replace(old, new), lang=literal.language,
                                   datatype=literal.datatype)))


def copy_node(src: Graph, node, dst: Graph, rename: dict, seen: set | None = None) -> None:
    """Copy a node's triples (following blank nodes, which get fresh ids) with IRIs renamed."""
    seen = seen if seen is not None else set()
    if node in seen:
        return
    seen.add(node)
    for p, o in src.predicate_objects(node):
        if isinstance(o, BNode):
            if o not in rename:
                rename[o] = BNode()
            copy_node(src, o, dst, rename, seen)
        dst.add((rename.get(node, node), p, rename.get(o, o)))


def rename_namespace(graph: Graph, old: str, new: str) -> Graph:
    def n(x):
        return URIRef(new + str(x)[len(old):]) if isinstance(x, URIRef) and str(x).startswith(old) else x
    out = Graph()
    for s, p, o in graph:
        out.add((n(s), n(p), n(o)))
    return out


def header(spec_path: Path, spec: dict) -> str:
    rel = spec_path.resolve().relative_to(ROOT) if spec_path.resolve().is_relative_to(ROOT) else spec_path
    lines = [
        f"# GENERATED by scripts/derive_pack.py from {rel} -- do not edit by hand.",
        f"# Source pack: {spec['source']}. Change the spec (or the source pack) and re-run:",
        f"#     python scripts/derive_pack.py {rel}",
    ]
    for line in spec.get("note", "").strip().splitlines():
        lines.append(f"# {line}".rstrip())
    return "\n".join(lines) + "\n\n"


def serialise(graph: Graph, prefixes: dict[str, str]) -> str:
    for prefix, ns in prefixes.items():
        graph.bind(prefix, ns, override=True)
    return graph.serialize(format="turtle")  # rdflib writes only the prefixes it uses


# ---------------------------------------------------------------- pack mode


def derive_pack(spec: dict, spec_prefixes: dict[str, str]) -> Graph:
    source = load_folder(ROOT / spec["source"], spec.get("exclude", []))
    old_ns, new_ns = spec["namespace_from"], spec["namespace_to"]
    old_policy = next(source.subjects(RDF.type, URIRef(NR + "CoveragePolicy")))
    keep = expand(spec["keep_version"], spec_prefixes)
    if (keep, URIRef(NR + "versionOf"), old_policy) not in source:
        raise DeriveError(f"{keep} is not a version of {old_policy}")
    criteria = set(source.objects(keep, URIRef(NR + "hasCriterion")))
    # drop the policy node, every version, and criteria (with their shapes) not in keep_version
    drop = {old_policy} | set(source.subjects(URIRef(NR + "versionOf"), old_policy))
    for crit in set(source.subjects(RDF.type, URIRef(NR + "CoverageCriterion"))) - criteria:
        drop.add(crit)
        drop.update(source.subjects(URIRef(NR + "conditionOf"), crit))
    graph = Graph()
    for s, p, o in source:
        if s not in drop and o not in drop:
            graph.add((s, p, o))
    # orphaned blank nodes of dropped subjects
    referenced = set(graph.objects())
    for s in {s for s in graph.subjects() if isinstance(s, BNode)}:
        if s not in referenced:
            graph.remove((s, None, None))
    graph = rename_namespace(graph, old_ns, new_ns)
    spec_prefixes = {**spec_prefixes, "new": new_ns}
    policy = expand(spec["policy"]["iri"], spec_prefixes)
    graph.add((policy, RDF.type, URIRef(NR + "CoveragePolicy")))
    for key, prop in (("id", NR + "policyId"), ("label", str(RDFS.label)), ("comment", str(RDFS.comment)),
                      ("title", "http://purl.org/dc/terms/title"), ("certainty_note", NR + "certaintyNote")):
        if key in spec["policy"]:
            graph.add((policy, URIRef(prop), Literal(spec["policy"][key])))
    for term in spec["policy"].get("citations", []):
        graph.add((policy, URIRef(NR + "citation"), expand(term, spec_prefixes)))
    for term in spec["policy"].get("services", []):
        graph.add((policy, URIRef(NR + "appliesToService"), expand(term, spec_prefixes)))
    version = add_version(graph, spec["version"], policy, spec_prefixes)
    for crit in sorted(criteria):
        graph.add((version, URIRef(NR + "hasCriterion"), URIRef(new_ns + str(crit)[len(old_ns):])
                   if str(crit).startswith(old_ns) else crit))
    for term in spec.get("add_criteria", []):
        graph.add((version, URIRef(NR + "hasCriterion"), expand(term, spec_prefixes)))
    if spec["policy"].get("illustrative_only"):
        graph.add((policy, URIRef(NR + "illustrativeOnly"), Literal(True)))
    apply_changes(graph, spec, spec_prefixes)
    for older in spec.get("older_version", []):
        add_revised_version(graph, graph, policy, version, older, spec_prefixes)
    add_extra_turtle(graph, spec, spec_prefixes)
    return graph


def add_version(graph: Graph, v: dict, policy: URIRef, spec_prefixes) -> URIRef:
    version = expand(v["iri"], spec_prefixes)
    graph.add((version, RDF.type, URIRef(NR + "PolicyVersion")))
    graph.add((version, URIRef(NR + "versionOf"), policy))
    graph.add((version, OWL.versionInfo, Literal(v["label"])))
    graph.add((version, URIRef(NR + "effectiveFrom"), Literal(v["effective_from"], datatype=XSD.date)))
    if v.get("effective_until"):
        graph.add((version, URIRef(NR + "effectiveUntil"), Literal(v["effective_until"], datatype=XSD.date)))
    for key, prop in (("comment", str(RDFS.comment)), ("certainty_note", NR + "certaintyNote")):
        if key in v:
            graph.add((version, URIRef(prop), Literal(v[key])))
    return version


def apply_changes(graph: Graph, spec: dict, spec_prefixes) -> None:
    for sub in spec.get("substitute", []):
        substitute(graph, expand(sub["node"], spec_prefixes), expand(sub["property"], spec_prefixes),
                   sub["old"], sub["new"])
    for item in spec.get("set", []):
        node, prop = expand(item["node"], spec_prefixes), expand(item["property"], spec_prefixes)
        if (node, None, None) not in graph:
            raise DeriveError(f"[[set]] on {node}: no such node in the derived pack")
        graph.remove((node, prop, None))
        values = item["values"] if isinstance(item.get("values"), list) else [item["value"]]
        for v in values:
            graph.add((node, prop, value(v, spec_prefixes)))


# ---------------------------------------------------------------- version mode


def derive_version(spec: dict, spec_prefixes: dict[str, str]) -> Graph:
    source = load_folder(ROOT / spec["source"], spec.get("exclude", []))
    policy = next(source.subjects(RDF.type, URIRef(NR + "CoveragePolicy")))
    base = expand(spec["base_version"], spec_prefixes)
    out = Graph()
    add_revised_version(source, out, policy, base, spec, spec_prefixes)
    add_extra_turtle(out, spec, spec_prefixes)
    return out


def add_revised_version(source: Graph, out: Graph, policy: URIRef, base: URIRef, spec: dict,
                        spec_prefixes: dict[str, str]) -> URIRef:
    """Add to `out` a version of `policy` listing the criteria of `base`, where each `[[revise]]`
    criterion is replaced by a revised copy (with copies of its condition shapes)."""
    if (base, URIRef(NR + "versionOf"), policy) not in source:
        raise DeriveError(f"{base} is not a version of {policy}")
    criteria = sorted(source.objects(base, URIRef(NR + "hasCriterion")))
    by_ref = {str(source.value(c, URIRef(NR + "referenceId"))): c for c in criteria}
    version = add_version(out, spec["version"], policy, spec_prefixes)
    revised = {}
    for rev in spec.get("revise", []):
        old = by_ref.get(rev["reference_id"])
        if old is None:
            raise DeriveError(f"no criterion with reference id {rev['reference_id']!r} in {base}")
        new = URIRef(str(old) + rev["suffix"])
        revised[old] = new
        rename = {old: new}
        for shape in sorted(source.subjects(URIRef(NR + "conditionOf"), old)):
            rename[shape] = URIRef(str(shape) + rev["suffix"])
        passage = source.value(old, URIRef(NR + "encodesPassage"))
        if passage is not None and rev.get("new_passage"):
            rename[passage] = URIRef(str(passage) + rev["suffix"])
        copied = Graph()
        for node in [old] + [s for s in rename if s not in (old,)]:
            if isinstance(node, URIRef):
                copy_node(source, node, copied, rename)
        apply_changes(copied, {"substitute": rev.get("substitute", []), "set": rev.get("set", [])},
                      spec_prefixes)
        out += copied
    for crit in criteria:
        out.add((version, URIRef(NR + "hasCriterion"), revised.get(crit, crit)))
    return version


def add_extra_turtle(out: Graph, spec: dict, spec_prefixes: dict[str, str]) -> None:
    extra = spec.get("extra_turtle")
    if extra:
        prefix_lines = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in spec_prefixes.items())
        out.parse(data=prefix_lines + extra, format="turtle")


# ---------------------------------------------------------------- main


def run(spec_path: Path, check: bool = False) -> bool:
    spec = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    spec_prefixes = {**PREFIXES, **spec.get("prefixes", {})}
    graph = derive_pack(spec, spec_prefixes) if spec["mode"] == "pack" else derive_version(spec, spec_prefixes)
    text = header(spec_path, spec) + serialise(graph, spec_prefixes)
    target = ROOT / spec["output"]
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if _canonical(current) != _canonical(text):
            print(f"stale: {spec['output']} (re-run scripts/derive_pack.py {spec_path})", file=sys.stderr)
            return False
        print(f"up to date: {spec['output']}")
        return True
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {spec['output']} ({len(graph)} triples)")
    return True


def _canonical(text: str):
    """Compare as graphs (rdflib.compare), not as text: serialisation order may vary."""
    from rdflib.compare import isomorphic

    class G:
        def __init__(self, t):
            self.g = Graph()
            if t:
                self.g.parse(data=t, format="turtle")

        def __eq__(self, other):
            return isomorphic(self.g, other.g)

    return G(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if an output is out of date")
    args = parser.parse_args(argv)
    ok = True
    for spec in args.specs:
        try:
            ok &= run(spec, args.check)
        except (DeriveError, KeyError, StopIteration) as exc:
            print(f"error: {spec}: {exc}", file=sys.stderr)
            return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
