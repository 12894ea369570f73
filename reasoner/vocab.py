"""Namespaces of the project (docs/architecture.md, "Namespaces").

Only namespace IRIs live here; classes, properties, codes and thresholds live in
`ontology/`, `knowledge/` and `shapes/`.
"""

from __future__ import annotations

from rdflib import Namespace
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SH, SKOS, XSD

NR = Namespace("https://w3id.org/necessity/ontology#")
VS = Namespace("https://w3id.org/necessity/valueset/")
SRC = Namespace("https://w3id.org/necessity/source/")
EV = Namespace("https://w3id.org/necessity/evidence/")
CASE_BASE = "https://w3id.org/necessity/case/"
POLICY_BASE = "https://w3id.org/necessity/policy/"
DETERMINATION_BASE = "https://w3id.org/necessity/determination/"
CODE_BASE = "https://w3id.org/necessity/code/"
SOFTWARE_AGENT = "https://w3id.org/necessity/software/reasoner"

CITO = Namespace("http://purl.org/spar/cito/")
FABIO = Namespace("http://purl.org/spar/fabio/")
PRISM = Namespace("http://prismstandard.org/namespaces/basic/2.0/")

PREFIXES = {
    "nr": NR,
    "vs": VS,
    "src": SRC,
    "ev": EV,
    "rdf": RDF,
    "rdfs": RDFS,
    "owl": OWL,
    "xsd": XSD,
    "skos": SKOS,
    "prov": PROV,
    "dcterms": DCTERMS,
    "sh": SH,
    "cito": CITO,
    "fabio": FABIO,
    "prism": PRISM,
}


def bind_prefixes(graph) -> None:
    """Bind the project prefixes on a graph, so Turtle output is readable."""
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns, override=True)
