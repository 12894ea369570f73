"""The command line (click). The only module that imports click; heavy imports stay inside
commands so that `--help` is instant.

Exit codes: 0 ran (positive result), 1 negative result where the command asks for it
(validate: does not conform), 2 bad input (file, case, FHIR, query, policy id),
3 bad knowledge base, 4 internal error.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import click

EXIT_CODES_HELP = """\b
Exit codes:
  0  ran; positive result (approved/pended/denied printed, conforms, clean)
  1  negative result where the command asks for it (validate: does not conform)
  2  bad input: missing or malformed file, FHIR, query, unknown policy or version
  3  bad knowledge base: ontology, knowledge or policy pack does not load
  4  internal error
"""


def _fail(exc) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def guarded(func):
    """Turn ReasonerErrors into a one-line message and their exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .errors import EXIT_INTERNAL, ReasonerError

        try:
            return func(*args, **kwargs)
        except ReasonerError as exc:
            _fail(exc)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # pragma: no cover - the last resort
            if os.environ.get("REASONER_DEBUG"):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


def write_output(text: str, output: str | None) -> None:
    """Print, or write the file atomically (a temporary file renamed into place)."""
    if not output:
        click.echo(text, nl=False)
        return
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reasoner():
    """The loaded knowledge base; kept for the life of the process (one per NECESSITY_HOME)."""
    return _load_reasoner(os.environ.get("NECESSITY_HOME"))


@functools.lru_cache(maxsize=4)
def _load_reasoner(home: str | None):
    from .api import Reasoner

    return Reasoner.load(home)


policy_option = click.option("--policy", "policy_id", required=True, metavar="ID",
                             help="Policy pack id (see `reasoner policies`).")
version_option = click.option("--version", "policy_version", default=None, metavar="VERSION",
                              help="Policy version; default: the one in force on the service date.")
output_option = click.option("--output", "-o", default=None, metavar="FILE",
                             help="Write to FILE (atomically) instead of standard output.")


class _ReasonerGroup(click.Group):
    """The main group; the authoring (check, test, diff) and store (batch, serve) commands live
    in their own modules and are added on first use, which also keeps start-up light."""

    _extensions_loaded = False

    def _load_extensions(self) -> None:
        if not self._extensions_loaded:
            self._extensions_loaded = True
            from . import cli_author, cli_store

            cli_author.register(self)
            cli_store.register(self)

    def list_commands(self, ctx):
        self._load_extensions()
        return super().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        self._load_extensions()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_ReasonerGroup, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="necessity-reasoner")
def main():
    """Medical-necessity determinations from a knowledge graph: criteria as SHACL, evidence as RDF."""


@main.command(epilog=EXIT_CODES_HELP)
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
    from .render.json import render_json
    from .render.rdf import render_turtle

    r = _reasoner()
    loaded = r.load_case(case)
    d = r.determine(loaded, policy_id, policy_version)
    if store_location:
        from .store import open_store

        with open_store(store_location) as store:
            store.put(d.iri, r.record_graph(d, loaded))
    if fmt == "json":
        text = render_json(d)
    elif fmt == "turtle":
        text = render_turtle(d)
    else:
        text = r.letter(d)
    write_output(text, output)


@main.command(epilog=EXIT_CODES_HELP)
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


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("query")
@click.option("--case", "case", default=None, type=click.Path(),
              help="Add this case (with its inferences) to the queried graph.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--store", "store_location", default=None, metavar="PATH_OR_URL",
              help="Query the decision store (folder or SPARQL endpoint URL) + knowledge graph.")
@guarded
def query(query, case, fmt, store_location):
    """Run SPARQL (a query string or a .rq file) over ontology + knowledge + packs (+ case),
    or with --store over the stored decision records + the knowledge graph."""
    from .errors import InputError
    from .render.results import render_results

    source = "query"
    if os.path.exists(query) or query.endswith(".rq"):
        path = Path(query)
        if not path.exists():
            raise InputError("file not found", source=query)
        source, query = str(path), path.read_text(encoding="utf-8")
    if store_location:
        if case:
            raise InputError("--case and --store do not combine: store a case with "
                             "`determine --store` first")
        from .store import open_store

        with open_store(store_location, create=False) as store:
            try:
                store.ensure_kb()
            except InputError as exc:  # a read-only endpoint: query what it holds
                if "HTTP 40" not in str(exc):
                    raise
                click.echo(f"warning: knowledge graph not updated in the store: {exc}", err=True)
            click.echo(render_results(store.query(query, source=source), fmt), nl=False)
        return
    r = _reasoner()
    loaded = r.load_case(case) if case else None
    result = r.query(query, loaded, source=source)
    click.echo(render_results(result, fmt), nl=False)


@main.command(epilog=EXIT_CODES_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@guarded
def policies(fmt):
    """List the policy packs with their versions and effective periods."""
    import json

    rows = _reasoner().policies()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for row in rows:
        period = f"{row['effective_from'] or '?'} .. {row['effective_until'] or 'in force'}"
        click.echo(f"{row['id']}\t{row['version']}\t{period}\t{row['criteria']} criteria\t{row['title']}")


if __name__ == "__main__":  # pragma: no cover
    main()
