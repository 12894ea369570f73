"""`query` and `policies`: look into the knowledge graph, the packs and the decision store."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .common import EXIT_CODES_HELP, _reasoner, guarded


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("query")
@click.option("--case", "case", default=None, type=click.Path(),
              help="Add this case (with its inferences) to the queried graph.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--store", "store_location", default=None, metavar="PATH_OR_URL",
              help="Query the decision store (folder or SPARQL endpoint URL) + knowledge graph.")
@click.option("--allow-service", "allow_service", multiple=True, metavar="URL",
              help="Let the query's SERVICE call this endpoint (repeatable). Without it a query "
                   "with SERVICE is refused: no query contacts an endpoint you did not name.")
@guarded
def query(query, case, fmt, store_location, allow_service):
    """Run SPARQL (a query string or a .rq file) over ontology + knowledge + packs (+ case),
    or with --store over the stored decision records + the knowledge graph."""
    from ..endpoints import refuse_remote
    from ..errors import InputError
    from ..render.results import render_results

    source = "query"
    if os.path.exists(query) or query.endswith(".rq"):
        path = Path(query)
        if not path.exists():
            raise InputError("file not found", source=query)
        source, query = str(path), path.read_text(encoding="utf-8")
    services = refuse_remote(query, allow_service, source)
    if store_location:
        if case:
            raise InputError("--case and --store do not combine: store a case with "
                             "`determine --store` first")
        from ..store import open_store

        with open_store(store_location, create=False) as store:
            try:
                store.ensure_kb()
            except InputError as exc:  # a read-only endpoint: query what it holds
                if "HTTP 40" not in str(exc):
                    raise
                click.echo(f"warning: knowledge graph not updated in the store: {exc}", err=True)
            text = _federated(lambda: render_results(store.query(query, source=source), fmt),
                              services, source)
        click.echo(text, nl=False)
        return
    r = _reasoner()
    loaded = r.load_case(case) if case else None
    result = r.query(query, loaded, source=source)
    click.echo(_federated(lambda: render_results(result, fmt), services, source), nl=False)


def _federated(run, services: list[str], source: str) -> str:
    """`run()`; with SERVICE endpoints, a failing call (refused, unreachable, a bad answer)
    becomes a one-line input error naming the endpoint(s), not a traceback."""
    from ..errors import InputError, ReasonerError

    if not services:
        return run()
    try:
        return run()
    except ReasonerError:
        raise
    except Exception as exc:  # urllib, rdflib or the parser of the endpoint's answer
        reason = getattr(exc, "reason", None) or exc
        names = ", ".join(f"<{s}>" for s in services)
        raise InputError(f"SERVICE {names} failed: {' '.join(str(reason).split())[:200]}",
                         source=source) from None


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@guarded
def policies(fmt):
    """List the policy packs with their versions, effective periods and the service codes each
    covers (without --policy, `determine` decides under every pack covering the request)."""
    import json

    rows = _reasoner().policies()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    click.echo("policy\tversion\teffective\tcriteria\tservice codes covered\ttitle")
    for row in rows:
        period = f"{row['effective_from'] or '?'} .. {row['effective_until'] or 'in force'}"
        services = ", ".join(row["services"]) or "none"
        if row["illustrative_only"]:
            services += " (example pack: decides only when named)"
        click.echo(f"{row['id']}\t{row['version']}\t{period}\t{row['criteria']} criteria"
                   f"\t{services}\t{row['title']}")
