#!/usr/bin/env python3
"""Generate docs/policies/<policy-id>.md from the policy packs (shapes/<policy-id>/): every
criterion with the passage it encodes, its citations, its thresholds and how its condition shapes
decide it; the criteria not decided from the record and why; the versions of the pack.

    python scripts/build_policy_docs.py           # (re)write docs/policies/*.md
    python scripts/build_policy_docs.py --check   # exit 1 if a page is stale

Generated, not written by hand, so that the description of a pack cannot drift from the pack: a
test runs `--check`. The text is the packs' own (labels, messages, passages, shape messages and
comments); this script only arranges it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDFS, SKOS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reasoner.kb import KnowledgeBase, PolicyPack  # noqa: E402
from reasoner.vocab import NR  # noqa: E402

OUT = ROOT / "docs" / "policies"
SH = "http://www.w3.org/ns/shacl#"
FABIO_YEAR = URIRef("http://purl.org/spar/fabio/hasPublicationYear")
KIND = {NR.UnmetCondition: "unmet", NR.MissingCondition: "missing",
        NR.NotApplicableCondition: "not applicable"}
KIND_ORDER = {"not applicable": 0, "unmet": 1, "missing": 2}
CONSEQUENCE = {NR.Deny: "deny", NR.Pend: "pend", NR.Approve: "approve"}
# A threshold is a literal bound at the top of a condition query: BIND(28 AS ?minimumDays).
BIND = re.compile(r'BIND\(\s*("[^"]*"(?:\^\^[\w:]+)?|-?\d+(?:\.\d+)?)\s+AS\s+\?(\w+)\s*\)')


def natural(ref: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", ref)]


def one_line(text) -> str:
    return " ".join(str(text).split())


def local(iri) -> str:
    return re.split(r"[/#]", str(iri))[-1]


class PackDoc:
    def __init__(self, kb: KnowledgeBase, pack: PolicyPack):
        self.kb, self.pack, self.g = kb, pack, pack.graph
        self.shapes: dict[URIRef, list[tuple[str, URIRef]]] = {}
        for shape, (criterion, kind) in pack.condition_shapes.items():
            self.shapes.setdefault(criterion, []).append((KIND.get(kind, local(kind)), shape))

    def value(self, node, prop):
        v = self.g.value(node, prop)
        if v is None:
            v = self.kb.knowledge.value(node, prop)
        if v is None:
            for other in self.kb.packs.values():
                v = other.graph.value(node, prop)
                if v is not None:
                    break
        return v

    def source(self, node) -> str:
        text = self.value(node, DCTERMS.bibliographicCitation) or self.value(node, DCTERMS.title) or local(node)
        year = self.value(node, FABIO_YEAR)
        text = one_line(text)
        if year and str(year) not in text:
            text += f" ({year})"
        return f"{text} [`{local(node)}`]"

    def criteria_of(self, version) -> list[URIRef]:
        return sorted(version.criteria, key=lambda c: natural(str(self.g.value(c, NR.referenceId))))

    def not_decided(self, criterion) -> bool:
        kinds = {k for k, _ in self.shapes.get(criterion, [])}
        return kinds == {"not applicable"} and str(self.g.value(criterion, RDFS.comment) or "").startswith("Not decided")

    def thresholds(self, criterion) -> list[str]:
        out = []
        for _, shape in self.shapes.get(criterion, []):
            for q in self._selects(shape):
                for literal, name in BIND.findall(q):
                    item = f"`{name}` = `{literal}`"
                    if item not in out:
                        out.append(item)
        return out

    def _selects(self, shape):
        for constraint in self.g.objects(shape, URIRef(SH + "sparql")):
            q = self.g.value(constraint, URIRef(SH + "select"))
            if q is not None:
                yield str(q)

    def criterion(self, c) -> list[str]:
        g = self.g
        ref, label = g.value(c, NR.referenceId), g.value(c, RDFS.label)
        lines = [f"### {ref}: {one_line(label)}", ""]
        passage = g.value(c, NR.encodesPassage)
        if passage is not None:
            section = g.value(passage, NR.section)
            text = g.value(passage, NR.passageText)
            cites = sorted(self.source(s) for s in g.objects(passage, NR.citation))
            lines.append(f"- **Passage** ({one_line(section) if section else 'no section recorded'}; "
                         f"paraphrased): {one_line(text) if text else '(no text)'}")
            if cites:
                lines.append(f"- **Passage source**: {'; '.join(cites)}")
        lines.append(f"- **Requirement**: {one_line(g.value(c, NR.message))}")
        lines.append(f"- **Cited**: {'; '.join(sorted(self.source(s) for s in g.objects(c, NR.citation)))}")
        effects = [f"{word} → {CONSEQUENCE.get(g.value(c, prop), local(g.value(c, prop)))}"
                   for word, prop in (("unmet", NR.onUnmet), ("missing", NR.onMissing))
                   if g.value(c, prop) is not None]
        lines.append(f"- **Outcome effect**: {', '.join(effects)}")
        thresholds = self.thresholds(c)
        if thresholds:
            lines.append(f"- **Thresholds** (bound once at the top of a condition query): {', '.join(thresholds)}")
        shapes = sorted(self.shapes.get(c, []), key=lambda ks: (KIND_ORDER.get(ks[0], 9), str(ks[1])))
        if shapes:
            lines.append("- **Decided by**:")
            for kind, shape in shapes:
                message = g.value(shape, URIRef(SH + "message"))
                lines.append(f"  - *{kind}* (`{local(shape)}`): {one_line(message) if message else '(no message)'}")
        elif g.value(c, NR.traceQuery) is not None:
            lines.append("- **Decided by**: no condition shape; met unless another rule says otherwise.")
        for prop, title in ((RDFS.comment, "Notes"), (NR.certaintyNote, "Certainty")):
            v = g.value(c, prop)
            if v is not None:
                lines.append(f"- **{title}**: {one_line(v)}")
        return lines + [""]

    def render(self) -> str:
        g, pack = self.g, self.pack
        policy = pack.policy_iri
        out = [f"# Policy pack `{pack.policy_id}`: {one_line(pack.title)}", "",
               f"<!-- GENERATED by scripts/build_policy_docs.py from shapes/{pack.folder.name}/ -- "
               "do not edit by hand; re-run the script. -->", ""]
        title = g.value(policy, DCTERMS.title)
        if title:
            out += [f"**{one_line(title)}**", ""]
        if g.value(policy, NR.illustrativeOnly) == Literal(True):
            out += ["> **Illustrative only.** This pack is not a payer's policy. Routing by service "
                    "code never selects it; it decides a request only when asked for by name "
                    f"(`--policy {pack.policy_id}`).", ""]
        services = sorted(str(self.kb.knowledge.value(s, SKOS.notation) or local(s))
                          for s in g.objects(policy, NR.appliesToService))
        if services:
            out += [f"Service codes covered: {', '.join('CPT ' + s for s in services)}.", ""]
        for prop in (RDFS.comment, NR.certaintyNote):
            v = g.value(policy, prop)
            if v is not None:
                out += [one_line(v), ""]
        cites = sorted(self.source(s) for s in g.objects(policy, NR.citation))
        if cites:
            out += ["Sources of the pack:", ""] + [f"- {c}" for c in cites] + [""]
        versions = sorted(pack.versions, key=lambda v: (v.effective_from is not None, v.effective_from), reverse=True)
        out += ["## Versions", "", "| version | IRI | effective from | effective until |", "|---|---|---|---|"]
        for v in versions:
            out.append(f"| {v.version} | `{local(v.iri)}` | {v.effective_from or '-'} | {v.effective_until or 'open'} |")
        out.append("")
        out.append("A request is decided under the version in force on its requested date; when none "
                   "is, under the newest version.")
        out.append("")
        for v in versions:
            note = [one_line(x) for x in (g.value(v.iri, RDFS.comment), g.value(v.iri, NR.certaintyNote)) if x]
            if note:
                out += [f"- **{v.version}**: {' '.join(note)}"]
        out.append("")
        newest = versions[0]
        decided = [c for c in self.criteria_of(newest) if not self.not_decided(c)]
        undecided = [c for c in self.criteria_of(newest) if self.not_decided(c)]
        out += [f"## Criteria of version {newest.version} ({len(decided)} decided from the record)", "",
                "Each criterion is decided by its condition shapes (SHACL, in the pack's Turtle "
                "files): it is not applicable if a not-applicable condition holds; else unmet if an "
                "unmet condition holds; else missing if a missing condition holds; else met. The "
                "outcome is denied if a criterion whose unmet effect is deny is unmet, else pended "
                "if one is missing, else approved. A denial is a recommendation a clinician must "
                "confirm.", ""]
        for c in decided:
            out += self.criterion(c)
        if undecided:
            out += [f"## Not decided from the record ({len(undecided)})", "",
                    "These criteria are reported as not applicable on every request, for the "
                    "reason given.", ""]
            for c in undecided:
                out += self.criterion(c)
        for v in versions[1:]:
            changed = sorted(set(v.criteria) - set(newest.criteria),
                             key=lambda c: natural(str(g.value(c, NR.referenceId))))
            dropped = sorted(set(newest.criteria) - set(v.criteria),
                             key=lambda c: natural(str(g.value(c, NR.referenceId))))
            out += [f"## Version {v.version}: what differs from {newest.version}", ""]
            if not changed and not dropped:
                out += ["The same criteria.", ""]
            for c in dropped:
                if g.value(c, NR.referenceId) not in {g.value(x, NR.referenceId) for x in changed}:
                    out += [f"- {g.value(c, NR.referenceId)} is not part of this version.", ""]
            for c in changed:
                out += self.criterion(c)
        return "\n".join(out).rstrip() + "\n"


def build() -> dict[Path, str]:
    kb = KnowledgeBase(ROOT)
    return {OUT / f"{pid}.md": PackDoc(kb, pack).render() for pid, pack in sorted(kb.packs.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    pages = build()
    if args.check:
        stale = [p for p, text in pages.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        extra = sorted(set(OUT.glob("*.md")) - set(pages)) if OUT.exists() else []
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)} (re-run scripts/build_policy_docs.py)", file=sys.stderr)
        for p in extra:
            print(f"no such pack: {p.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in pages.items():
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
