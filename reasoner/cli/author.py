"""Authoring commands (check, test, diff) for guideline authors; registered on the main CLI group.

The logic lives in the `reasoner.authoring` package; this module only parses options and prints.
Exit codes: check 0 clean / 1 problems / 2 could not run; test 0 pass / 1 mismatch;
diff 0 (a diff is information, not a failure); 2 bad input, 3 bad knowledge base (common.py).
"""

from __future__ import annotations

import sys

import click

format_option = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                             show_default=True)


def _dumps(data) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=True) + "\n"

from .common import EXIT_CODES_HELP, _reasoner, guarded, output_option, progress_lines, write_output


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@format_option
@click.option("--no-hermit", is_flag=True, help="Skip the HermiT consistency check (about 1.5 s).")
@output_option
@guarded
def check(paths, fmt, no_hermit, output):
    """Lint the ontology, the knowledge and every pack: parse, HermiT, SHACL-SHACL, criterion
    metadata, undeclared IRIs and the QC queries (qc/*.rq). Report only problems in PATHS if
    given (one PATH holding ontology/ is checked as a project folder of its own). Exit 0
    clean, 1 problems found, 2 could not run."""
    from ..authoring import run_check
    from ..errors import InputError, KnowledgeError

    try:
        report = run_check(None, paths, hermit=not no_hermit)
    except (InputError, KnowledgeError):
        raise
    except Exception as exc:  # a check that cannot run is "could not run", exit 2
        raise InputError(f"check could not run: {type(exc).__name__}: {exc}") from None
    text = _dumps(report.to_dict()) if fmt == "json" else report.render_text()
    write_output(text, output)
    sys.exit(0 if report.clean else 1)

@click.command(epilog=EXIT_CODES_HELP)
@click.argument("cases", nargs=-1, type=click.Path())
@click.option("--policy", "policy_id", default=None, metavar="ID",
              help="Only this pack (default: every pack).")
@click.option("--all-versions", is_flag=True,
              help="For coverage, also decide each case under every other version of the pack.")
@click.option("--verbose", "-v", is_flag=True, help="Name every case under every verdict.")
@format_option
@output_option
@guarded
def test(cases, policy_id, all_versions, verbose, fmt, output):
    """Decide CASES (default: every case under cases/), compare with each case's
    expected.json, and print criterion coverage: which cases make each criterion met, unmet,
    missing or not applicable, and the criteria no case exercises. Exit 1 on any mismatch."""
    from ..authoring import find_cases, run_tests

    r = _reasoner()
    report = run_tests(r, find_cases(cases, r.kb.root), policy_id, all_versions,
                       progress=progress_lines("decided"))
    text = _dumps(report.to_dict()) if fmt == "json" else report.render_text(verbose)
    write_output(text, output)
    sys.exit(0 if report.passed else 1)

@click.command(epilog=EXIT_CODES_HELP)
@click.argument("cases", nargs=-1)
@click.option("--from", "from_ref", required=True, metavar="POLICY[@VERSION]",
              help="The pack (and version) before the change.")
@click.option("--to", "to_ref", required=True, metavar="POLICY[@VERSION]",
              help="The pack (and version) after the change.")
@click.option("--store", "store_location", default=None, metavar="PATH_OR_URL",
              help="Compare the cases recorded in this decision store (its past requests) "
                   "instead of CASES.")
@click.option("--workers", "-j", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: every core).")
@click.option("--block-size", "block_size", type=click.IntRange(1, 100_000), default=200,
              show_default=True, help="Cases a worker takes at a time.")
@click.option("--cluster", "cluster", default=None, metavar="ADDRESS",
              help="Decide on a Dask cluster (tcp://host:8786, or local:N; docs/cluster.md).")
@format_option
@output_option
@guarded
def diff(cases, from_ref, to_ref, store_location, workers, block_size, cluster, fmt, output):
    """Decide CASES (default: every case under cases/; or the cases recorded in --store) under
    two packs or two versions: which outcomes flip, which criterion verdicts change, and which
    criteria's shapes differ. Without @VERSION each case is decided under the version in force
    on its service date. Cases are decided in blocks on every core (reasoner batch)."""
    import contextlib

    from ..authoring import find_cases
    from ..authoring.diff_batch import run_diff_batch
    from ..batch.sources import check_inputs, iter_inputs, store_cases
    from ..errors import InputError
    from ..store import open_store

    r = _reasoner()
    if store_location and cases:
        raise InputError("give CASES or --store, not both")
    with contextlib.ExitStack() as stack:
        if store_location:
            store = stack.enter_context(open_store(store_location, create=False))

            def source():
                return store_cases(store)
        else:
            check_inputs(cases)
            paths = [str(p) for p in find_cases(list(iter_inputs(cases)) or None, r.kb.root)]

            def source():
                return paths
        client = None
        if cluster:
            from ..batch.cluster import close, connect

            client = connect(cluster)
            stack.callback(close, client)
        report = run_diff_batch(r, source, from_ref, to_ref, workers=workers,
                                block_size=block_size, cluster=client,
                                progress=progress_lines("compared"))
    text = _dumps(report.to_dict()) if fmt == "json" else report.render_text()
    write_output(text, output)
