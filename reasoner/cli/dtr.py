"""`questionnaire`: the FHIR R4 Questionnaire of the documentation a pended case lacks (Da Vinci
DTR; docs/dtr.md). Its answers come back with `reasoner determine CASE --answers QR.json`."""

from __future__ import annotations

import sys

import click

from .common import (
    EXIT_CODES_HELP,
    _reasoner,
    guarded,
    policy_option,
    policy_version_option,
    write_output,
)


@click.command(epilog=EXIT_CODES_HELP + "\n\nquestionnaire: exit 1 when the case is not "
               "pended (nothing is missing, no questionnaire is needed).")
@click.argument("case", type=click.Path())
@policy_option
@policy_version_option
@click.option("--out", "--output", "-o", "output", default=None, metavar="FILE",
              help="Write to FILE (atomically) instead of standard output.")
@guarded
def questionnaire(case, policy_id, policy_version, output):
    """Print the Questionnaire (FHIR R4 JSON) asking for the facts CASE lacks under a policy:
    one item per missing fact, with its type, units and answer options; display items name
    documents to send. Answer it and run `reasoner determine CASE --answers QR.json`."""
    from ..dtr.questionnaire import NotPended, build_questionnaire, dumps

    r = _reasoner()
    decided = r.determine(r.load_case(case), policy_id, policy_version)
    try:
        resource = build_questionnaire(decided, r.kb)
    except NotPended:
        click.echo(f"{case}: no questionnaire needed: the determination under {policy_id} is "
                   f"{decided.outcome}, not pended", err=True)
        sys.exit(1)
    write_output(dumps(resource), output)
