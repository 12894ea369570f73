"""`reasoner diff`: decide cases under two packs or two versions; report the outcomes that flip,
the criterion verdicts that change, and the criteria whose shapes differ."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from rdflib import BNode, Graph, Literal, URIRef

from ..errors import InputError
from ..model import reference_sort_key
from ..vocab import NR
from .cases import DeterminationCache
from .project import _short


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
        flips = self.flips()
        others = [c for c in self.cases if not c.flipped and any(not _quiet(ch) for ch in c.changed)]
        one_sided = [c for c in self.cases if not c.flipped and c.changed
                     and all(_quiet(ch) for ch in c.changed)]
        # the headline counts what the sections below list
        out = [f"diff {self.from_ref} -> {self.to_ref}: {len(self.cases)} case(s) decided; "
               f"{len(flips)} outcome flip(s) and {len(others)} case(s) with changed verdicts "
               f"but the same outcome, listed below"
               + (f"; {len(one_sided)} more differ only in criteria of one side that pass there "
                  f"(summarised)" if one_sided else "")]
        out.append("")
        out.append("outcome flips:")
        for c in flips:
            out.append(f"  {c.case}: {c.from_outcome} -> {c.to_outcome}")
            for ch in c.changed:
                if not _quiet(ch):
                    out.append(f"      {ch['ref']}: {ch['from'] or '(absent)'} -> {ch['to'] or '(absent)'}")
        if not flips:
            out.append("  (none)")
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


def resolve_refs(kb, from_ref: str, to_ref: str):
    """The two sides of a diff, each (policy id, version or None, pack); an unknown policy or
    version is bad input (the pack's own errors)."""
    sides = []
    for ref in (from_ref, to_ref):
        policy, version = parse_policy_ref(ref)
        pack = kb.pack(policy)
        if version:
            pack.version(version)
        sides.append((policy, version, pack))
    return sides


def run_diff(reasoner, case_paths: list[Path], from_ref: str, to_ref: str,
             cache: DeterminationCache | None = None,
             progress: Callable[[int, int], None] | None = None) -> DiffReport:
    """Decide the cases under two packs or two versions; report flips, changed verdicts and the
    criteria whose condition shapes differ (rdflib.compare.graph_diff per criterion).
    `progress(done, total)` is called after each case."""
    kb = reasoner.kb
    (p1, v1, pack1), (p2, v2, pack2) = resolve_refs(kb, from_ref, to_ref)
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
        if progress:
            progress(len(cases), len(case_paths))
    return _report(from_ref, to_ref, pack1, v1, pack2, v2, cases, used_versions)


def _report(from_ref, to_ref, pack1, v1, pack2, v2, cases, used_versions) -> DiffReport:
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
