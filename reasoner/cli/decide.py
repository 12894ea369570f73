"""`determine` and `validate`: decide one case under a policy, or show its raw SHACL report."""

from __future__ import annotations

import sys

import click

from .common import EXIT_CODES_HELP, _reasoner, guarded, output_option, policy_option, version_option, write_output


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("case", type=click.Path())
@policy_option
@version_option
@click.option("--format", "fmt", type=click.Choice(["letter", "json", "turtle"]), default="letter",
              show_default=True)
@output_option
@click.option("--store", "store_location", default=None, metavar="PATH_OR_URL",
              help="Also write the decision record to this store (folder or SPARQL endpoint URL); "
                   "deciding again replaces it.")
@guarded
def determine(case, policy_id, policy_version, fmt, output, store_location):
    """Decide CASE (Turtle case file, FHIR R4 JSON, or a case folder) under a policy."""
    from ..render.json import render_json
    from ..render.rdf import render_turtle

    r = _reasoner()
    loaded = r.load_case(case)
    d = r.determine(loaded, policy_id, policy_version)
    if store_location:
        from ..store import open_store

        with open_store(store_location) as store:
            store.put(d.iri, r.record_graph(d, loaded))
    if fmt == "json":
        text = render_json(d)
    elif fmt == "turtle":
        text = render_turtle(d)
    else:
        text = r.letter(d)
    write_output(text, output)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("case", type=click.Path())
@policy_option
@click.option("--format", "fmt", type=click.Choice(["text", "turtle"]), default="text",
              show_default=True)
@guarded
def validate(case, policy_id, fmt):
    """Print the SHACL validation report of CASE against a policy pack (exit 1 if it does not conform)."""
    r = _reasoner()
    report = r.validate(case, policy_id)
    if fmt == "turtle":
        click.echo(report.graph.serialize(format="turtle"), nl=False)
    else:
        click.echo(f"Conforms: {report.conforms}")
        for res in report.results:
            sev = str(res.severity).rsplit("#", 1)[-1]
            click.echo(f"{sev}\t{res.source_shape}\tfocus={res.focus_node}\tvalue={res.value}\t{res.message}")
    sys.exit(0 if report.conforms else 1)
