#!/usr/bin/env python3
"""Generate docs/vocabulary.md from ontology/*.ttl: every class, property and named value an
analyst meets in decision records and the knowledge graph, with its label and definition
(skos:definition, else rdfs:comment), plus one example query per main class.

    python scripts/build_vocabulary_doc.py           # (re)write docs/vocabulary.md
    python scripts/build_vocabulary_doc.py --check   # exit 1 if docs/vocabulary.md is stale

The example queries run over a decision store (`reasoner query FILE --store PATH`); the test
suite runs each of them on the corpus store (tests/test_store.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "vocabulary.md"
NR = "https://w3id.org/necessity/ontology#"

PREFIXES = {
    "nr": NR, "prov": "http://www.w3.org/ns/prov#", "skos": str(SKOS), "rdfs": str(RDFS),
    "owl": str(OWL), "xsd": "http://www.w3.org/2001/XMLSchema#", "dcterms": "http://purl.org/dc/terms/",
    "cito": "http://purl.org/spar/cito/", "fabio": "http://purl.org/spar/fabio/",
    "prism": "http://prismstandard.org/namespaces/basic/2.0/", "rdf": str(RDF),
}

# Terms of standard vocabularies that decision records use (W3C / SPAR definitions, abridged).
STANDARD = [
    ("prov:Entity", "A physical, digital, conceptual or other kind of thing (PROV-O). Every "
     "determination and criterion result is one."),
    ("prov:Activity", "Something that occurs over time and acts on entities (PROV-O): the "
     "determination activity."),
    ("prov:SoftwareAgent", "Running software (PROV-O): the reasoner."),
    ("prov:wasGeneratedBy", "Determination -> the activity that produced it."),
    ("prov:used", "Activity -> an entity it used: the case, the policy version, and every "
     "ontology, knowledge, rule and shape file (each with nr:contentHash)."),
    ("prov:wasAssociatedWith", "Activity -> the software agent responsible."),
    ("prov:wasDerivedFrom", "A fact -> the document entry it was read from (case provenance)."),
    ("rdfs:label", "A human-readable name (determination, criterion result, file path of a used file)."),
    ("rdfs:comment", "A note: on a denial, that a clinician must confirm it."),
    ("owl:versionInfo", "The version label of a policy version."),
    ("skos:notation", "The code of a concept as written (e.g. 64483, M54.17)."),
    ("skos:prefLabel", "The preferred name of a concept."),
    ("skos:broader", "Concept -> a more general concept of the same code system."),
    ("cito:citesAsEvidence", "Evidence statement -> a bibliographic source it rests on (CiTO)."),
]

EXAMPLES = {
    "Determination": ("Outcomes of every stored determination, with the case and the policy version.", """
SELECT ?determination ?case ?version ?outcome ?serviceDate WHERE {
  GRAPH ?determination {
    ?determination a nr:Determination ; nr:forCase ?case ; nr:underPolicyVersion ?version ;
                   nr:outcome ?outcome .
    OPTIONAL { ?determination nr:serviceDate ?serviceDate }
  }
} ORDER BY ?determination LIMIT 20"""),
    "CriterionResult": ("Each criterion result of one case's determinations, with the facts that decided it.", """
SELECT ?determination ?ref ?verdict (COUNT(DISTINCT ?fact) AS ?facts) WHERE {
  GRAPH ?determination {
    ?determination nr:hasCriterionResult ?result .
    ?result nr:referenceId ?ref ; nr:verdict ?verdict .
    OPTIONAL { ?result nr:decidedBy|nr:decidedByInference ?fact }
  }
} GROUP BY ?determination ?ref ?verdict ORDER BY ?determination ?ref LIMIT 50"""),
    "InformationRequest": ("What pended determinations ask for, and where it would be documented.", """
SELECT ?determination ?ref ?what ?where WHERE {
  GRAPH ?determination {
    ?determination nr:hasInformationRequest ?request .
    ?request nr:referenceId ?ref ; nr:requestedInformation ?what .
    OPTIONAL { ?request nr:documentationLocation ?where }
  }
} ORDER BY ?determination ?ref LIMIT 50"""),
    "PolicyVersion": ("Policy versions in the knowledge graph, with their effective periods and how many stored decisions used each.", """
SELECT ?policyId ?version ?from ?until (COUNT(DISTINCT ?d) AS ?decisions) WHERE {
  GRAPH <https://w3id.org/necessity/kb> {
    ?v a nr:PolicyVersion ; nr:versionOf ?policy ; owl:versionInfo ?version .
    ?policy nr:policyId ?policyId .
    OPTIONAL { ?v nr:effectiveFrom ?from } OPTIONAL { ?v nr:effectiveUntil ?until }
  }
  OPTIONAL { GRAPH ?d { ?d nr:underPolicyVersion ?v } }
} GROUP BY ?policyId ?version ?from ?until ORDER BY ?policyId ?from"""),
    "CoverageCriterion": ("Criteria with the passage they encode, joined with how often stored decisions found them unmet.", """
SELECT ?ref ?label ?section (COUNT(DISTINCT ?d) AS ?unmet) WHERE {
  GRAPH <https://w3id.org/necessity/kb> {
    ?criterion a nr:CoverageCriterion ; nr:referenceId ?ref ; rdfs:label ?label .
    OPTIONAL { ?criterion nr:encodesPassage/nr:section ?section }
  }
  OPTIONAL { GRAPH ?d { ?r nr:criterion ?criterion ; nr:verdict nr:Unmet } }
} GROUP BY ?ref ?label ?section ORDER BY DESC(?unmet) ?ref"""),
    "EvidenceStatement": ("Evidence statements with the sources they cite and the criteria they support.", """
SELECT ?statement ?label ?source ?criterion WHERE {
  GRAPH <https://w3id.org/necessity/kb> {
    ?statement a nr:EvidenceStatement ; rdfs:label ?label .
    OPTIONAL { ?statement cito:citesAsEvidence ?source }
    OPTIONAL { ?criterion nr:supportingEvidence ?statement }
  }
} ORDER BY ?statement LIMIT 50"""),
    "PriorAuthorizationCase": ("The requested service of each stored case: code, date and reason diagnoses.", """
SELECT ?determination ?code ?requestedDate ?diagnosisCode WHERE {
  GRAPH ?determination {
    ?determination nr:forCase ?case .
    ?case nr:indexRequest ?request .
    ?request nr:code ?code .
    OPTIONAL { ?request nr:requestedDate ?requestedDate }
    OPTIONAL { ?request nr:reasonDiagnosis/nr:code ?diagnosisCode }
  }
} ORDER BY ?determination LIMIT 50"""),
}


def qname(g: Graph, term) -> str:
    text = str(term)
    for prefix, ns in PREFIXES.items():
        if text.startswith(ns) and text != ns:
            return f"{prefix}:{text[len(ns):]}"
    return f"<{text}>"


def one_line(value) -> str:
    return " ".join(str(value).split()).replace("|", "\\|") if value is not None else ""


def definition(g: Graph, term) -> str:
    return one_line(g.value(term, SKOS.definition) or g.value(term, RDFS.comment) or "")


def build() -> str:
    lines = [
        "# Vocabulary for analysts",
        "",
        "Generated by `scripts/build_vocabulary_doc.py` from `ontology/*.ttl` (do not edit by hand:",
        "edit the ontology and re-run the script). Every class, property and named value that",
        "decision records and the knowledge graph use, with its label and definition. Prefix `nr:` is",
        f"`{NR}`; the other prefixes are the usual ones (`prov:`, `skos:`, `rdfs:`, `owl:`, `cito:`).",
        "",
        "Where things are in a store (docs/store.md): each decision record is the named graph whose",
        "name is its determination IRI; the ontology, knowledge and policy packs are the named graph",
        "`<https://w3id.org/necessity/kb>`. The example queries run with",
        "`reasoner query FILE --store PATH` (project prefixes may be left undeclared there).",
        "",
        "## Contents",
        "",
    ]
    body: list[str] = []
    files = sorted((ROOT / "ontology").glob("*.ttl"))
    for path in files:
        g = Graph().parse(path, format="turtle")
        onto = next(g.subjects(RDF.type, OWL.Ontology), None)
        title = one_line(g.value(onto, URIRef("http://purl.org/dc/terms/title"))) if onto else ""
        anchor = path.stem
        lines.append(f"- [{path.name}](#{anchor}){': ' + title if title else ''}")
        body += ["", f'<a id="{anchor}"></a>', f"## `ontology/{path.name}`" + (f": {title}" if title else ""), ""]
        if onto is not None and g.value(onto, RDFS.comment):
            body += [one_line(g.value(onto, RDFS.comment)), ""]
        classes = sorted(s for s in g.subjects(RDF.type, OWL.Class) if isinstance(s, URIRef))
        if classes:
            body += ["### Classes", "", "| class | label | definition | subclass of |", "|---|---|---|---|"]
            for c in classes:
                supers = ", ".join(sorted(qname(g, o) for o in g.objects(c, RDFS.subClassOf)
                                          if isinstance(o, URIRef)))
                body.append(f"| `{qname(g, c)}` | {one_line(g.value(c, RDFS.label))} | "
                            f"{definition(g, c)} | {supers} |")
            body.append("")
        props = []
        for kind, name in ((OWL.ObjectProperty, "object"), (OWL.DatatypeProperty, "data"),
                           (OWL.AnnotationProperty, "annotation")):
            props += [(p, name) for p in g.subjects(RDF.type, kind) if isinstance(p, URIRef)]
        if props:
            body += ["### Properties", "",
                     "| property | kind | label | definition | domain | range |", "|---|---|---|---|---|---|"]
            for p, kind in sorted(set(props), key=lambda x: str(x[0])):
                dom = ", ".join(sorted(qname(g, o) for o in g.objects(p, RDFS.domain) if isinstance(o, URIRef)))
                rng = ", ".join(sorted(qname(g, o) for o in g.objects(p, RDFS.range) if isinstance(o, URIRef)))
                body.append(f"| `{qname(g, p)}` | {kind} | {one_line(g.value(p, RDFS.label))} | "
                            f"{definition(g, p)} | {dom} | {rng} |")
            body.append("")
        classes_set = set(classes)
        values = sorted({s for s, o in g.subject_objects(RDF.type)
                         if isinstance(s, URIRef) and str(s).startswith(NR)
                         and o not in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty,
                                       OWL.AnnotationProperty, OWL.Ontology, OWL.NamedIndividual,
                                       OWL.FunctionalProperty, OWL.TransitiveProperty,
                                       OWL.InverseFunctionalProperty, OWL.SymmetricProperty)
                         and s not in classes_set})
        if values:
            body += ["### Named values", "", "| value | type | label | definition |", "|---|---|---|---|"]
            for v in values:
                types = ", ".join(sorted(qname(g, t) for t in g.objects(v, RDF.type)
                                         if t != OWL.NamedIndividual))
                body.append(f"| `{qname(g, v)}` | {types} | {one_line(g.value(v, RDFS.label))} | "
                            f"{definition(g, v)} |")
            body.append("")
    lines.append("- [Standard terms in decision records](#standard)")
    lines.append("- [Example queries](#examples)")
    body += ["", '<a id="standard"></a>', "## Standard terms in decision records", "",
             "| term | meaning here |", "|---|---|"]
    body += [f"| `{t}` | {d} |" for t, d in STANDARD]
    body += ["", '<a id="examples"></a>', "## Example queries, one per main class", ""]
    prologue = "\n".join(f"PREFIX {p}: <{PREFIXES[p]}>" for p in ("nr", "rdfs", "owl", "cito"))
    for cls, (what, query) in EXAMPLES.items():
        body += [f"### `nr:{cls}`", "", what, "", "```sparql", prologue + "\n" + query.strip(), "```", ""]
    return "\n".join(lines + body).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = build()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run scripts/build_vocabulary_doc.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
