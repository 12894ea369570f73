"""`determine` and `validate`: decide one case under a policy, or show its raw SHACL report.

Without `--policy`, the request's service code chooses the packs (`Reasoner.covering_policies`).
One pack (named or chosen): the output is exactly that of one determination. Several packs:
JSON is a list of determinations in policy-id order; letters follow one another, each after a
rule line naming its policy; Turtle is one graph holding every determination.
"""

from __future__ import annotations

import sys

import click

from .common import (
    EXIT_CODES_HELP,
    _reasoner,
    engine_option,
    guarded,
    output_option,
    policy_version_option,
    routed_policy_option,
    write_output,
)

#: the line between letters when several packs decide one request
LETTER_RULE = "=" * 78


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("case", type=click.Path())
@routed_policy_option
@policy_version_option
@click.option("--format", "fmt", type=click.Choice(["letter", "json", "turtle"]), default="letter",
              show_default=True)
@output_option
@engine_option
@click.option("--store", "store_location", default=None, metavar="PATH_OR_URL",
              help="Also write the decision record to this store (folder or SPARQL endpoint URL); "
                   "deciding again replaces it.")
@guarded
def determine(case, policy_id, policy_version, fmt, output, engine, store_location):
    """Decide CASE (Turtle case file, FHIR R4 JSON, or a case folder) under a policy, or under
    every policy that covers its service code."""
    from ..errors import InputError
    from ..render.json import render_json_all
    from ..render.rdf import determination_graph

    if policy_version and not policy_id:
        raise InputError("--policy-version needs --policy (a version belongs to one policy)")
    r = _reasoner(engine)
    loaded = r.load_case(case)
    decided = r.determine_all(loaded, policy_id, policy_version)
    if store_location:
        from ..store import open_store

        with open_store(store_location) as store:
            for d in decided:
                store.put(d.iri, r.record_graph(d, loaded))
    if fmt == "json":
        text = render_json_all(decided)
    elif fmt == "turtle":
        graph = determination_graph(decided[0])
        for d in decided[1:]:
            graph += determination_graph(d)
        text = graph.serialize(format="turtle")
    elif len(decided) == 1:
        text = r.letter(decided[0])
    else:
        text = "\n".join(f"{LETTER_RULE}\nUnder policy {d.policy.id}\n{LETTER_RULE}\n\n"
                         f"{r.letter(d)}" for d in decided)
    write_output(text, output)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("case", type=click.Path())
@routed_policy_option
@click.option("--format", "fmt", type=click.Choice(["text", "turtle"]), default="text",
              show_default=True)
@engine_option
@guarded
def validate(case, policy_id, fmt, engine):
    """Print the SHACL validation report of CASE against a policy pack, or against every pack
    that covers its service code (exit 1 if one does not conform). Where conditions of two
    kinds held for one criterion, a note says which decides its verdict and why."""
    r = _reasoner(engine)
    loaded = r.load_case(case)
    policy_ids = [policy_id] if policy_id else r.covering_policies(loaded)
    conforms = True
    for pid in policy_ids:
        report = r.validate(loaded, pid)
        conforms = conforms and report.conforms
        if len(policy_ids) > 1:
            click.echo(f"{'# ' if fmt == 'turtle' else ''}Policy: {pid}")
        if fmt == "turtle":
            click.echo(report.graph.serialize(format="turtle"), nl=False)
            continue
        click.echo(f"Conforms: {report.conforms}")
        for res in report.results:
            sev = str(res.severity).rsplit("#", 1)[-1]
            click.echo(f"{sev}\t{res.source_shape}\tfocus={res.focus_node}\tvalue={res.value}"
                       f"\t{res.message}")
        for note in r.precedence_notes(loaded, pid, report):
            click.echo(f"Note\t{note}")
    sys.exit(0 if conforms else 1)
