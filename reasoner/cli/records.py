"""Store commands (batch, serve) for decision records; registered on the main CLI group."""

from __future__ import annotations

import contextlib
import itertools
import sys

import click

from .common import (EXIT_CODES_HELP, engine_env, engine_option, guarded, policy_option,
                     policy_version_option, progress_lines)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("cases", nargs=-1, required=True)
@policy_option
@policy_version_option
@click.option("--store", "store_location", default=None, metavar="PATH_OR_URL",
              help="Decision store: a folder (embedded pyoxigraph, created if absent) or a "
                   "SPARQL 1.1 endpoint URL (see docs/store.md).")
@click.option("--out", "out", default=None, metavar="FILE",
              help="Instead of a store: FILE.ndjson (one determination JSON per line) or "
                   "FILE.parquet (one row per determination), in input order, written "
                   "atomically.")
@click.option("--workers", "-j", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: every core).")
@click.option("--block-size", "block_size", type=click.IntRange(1, 100_000), default=200,
              show_default=True, help="Cases a worker takes at a time.")
@click.option("--cluster", "cluster", default=None, metavar="ADDRESS",
              help="Run the blocks on a Dask cluster: its scheduler's address "
                   "(tcp://host:8786), or local:N for N worker processes here "
                   "(docs/cluster.md).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: on when standard error is a terminal; otherwise a line "
                   "every few seconds).")
@click.option("--verbose", "-v", is_flag=True,
              help="One line per case on standard error once its result is written.")
@click.option("--case-timeout", "case_timeout", type=click.FloatRange(min=0), default=120.0,
              show_default=True, metavar="SECONDS",
              help="Time limit per case: a case over it fails alone (named in the summary), "
                   "its worker is replaced, and the batch goes on. 0: no limit.")
@engine_option
@guarded
def batch(cases, policy_id, policy_version, store_location, out, workers, block_size, cluster,
          progress, verbose, case_timeout, engine):
    """Decide every case in CASES under a policy and store each decision record in the store,
    one named graph per determination (deciding a case again replaces its record), or write
    the determinations to --out. CASES: case files, case folders, folders of case folders,
    quoted glob patterns ('incoming/*/bundle.json'), or - for NDJSON on standard input (one
    FHIR Bundle per line). Exit 2 if a case failed or the store stopped taking records (the
    summary names them), 130 if interrupted."""
    from ..batch.runner import run_batch
    from ..batch.sinks import open_sink
    from ..batch.sources import check_inputs, iter_inputs
    from ..errors import InputError, redact
    from ..store import open_store

    if (store_location is None) == (out is None):
        raise InputError("give one of --store or --out")
    check_inputs(cases)
    streamed = "-" in cases
    items = iter_inputs(cases) if streamed else list(iter_inputs(cases))
    first = next(iter(items), None) if streamed else (items[0] if items else None)
    if first is None:
        raise InputError("no cases found (case.ttl or bundle.json; on standard input one FHIR "
                         "Bundle per line)", source=" ".join(cases))
    if streamed:
        items = itertools.chain([first], items)
    total = None if streamed else len(items)
    show = (sys.stderr.isatty() and not verbose and total is not None) if progress is None \
        else progress and total is not None

    def log(result):
        if result.error:
            click.echo(f"failed {redact(result.error)}", err=True)
        else:
            verb = "stored" if out is None else "written"
            click.echo(f"{verb} {result.iri} {result.outcome}", err=True)
        sys.stderr.flush()

    client = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(engine_env(engine))  # before a local:N cluster starts its workers
        store = stack.enter_context(open_store(store_location)) if out is None else None
        sink = open_sink(out, store)
        if cluster:
            from ..batch.cluster import close, connect

            client = connect(cluster)
            stack.callback(close, client)
        options = dict(version=policy_version, workers=workers, case_timeout=case_timeout,
                       block_size=block_size, cluster=client)
        if show:
            with click.progressbar(length=total, label="deciding", file=sys.stderr,
                                   show_pos=True, show_eta=True) as bar:
                summary = run_batch(items, policy_id, sink,
                                    progress=lambda _r: bar.update(1), **options)
        else:
            # not a terminal: a line every few seconds, or one line per case with --verbose
            lines, done = progress_lines("decided"), [0]

            def tick(result):
                done[0] += 1
                lines(done[0], total if total is not None else done[0] + 1)

            summary = run_batch(items, policy_id, sink, **options,
                                progress=log if verbose else tick if progress is None else None)
    for line in summary.lines():
        click.echo(line)
    if summary.interrupted:
        sys.exit(130)
    if summary.errors or summary.store_error:
        sys.exit(2)

@click.command(epilog=EXIT_CODES_HELP)
@click.option("--store", "store_location", required=True, metavar="PATH",
              help="Decision store folder (embedded pyoxigraph; created if absent).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Beyond loopback, put a TLS reverse proxy in front.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--write-token", default=None, metavar="TOKEN", envvar="REASONER_WRITE_TOKEN",
              help="Accept SPARQL updates that send `Authorization: Bearer TOKEN` "
                   "(env REASONER_WRITE_TOKEN). Without it the endpoint is read-only.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A Host header name to accept besides localhost, 127.0.0.1, [::1] and the "
                   "bound address (repeatable; DNS-rebinding protection).")
@click.option("--allow-service", "allow_services", multiple=True, metavar="URL",
              help="A SPARQL endpoint that SERVICE (or FROM / LOAD) may name (repeatable). "
                   "By default queries reach nothing but this store.")
@click.option("--query-timeout", default=10.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0.1, 3600), envvar="REASONER_QUERY_TIMEOUT",
              help="Time limit of one query, to its last byte.")
@click.option("--max-rows", default=10_000, show_default=True, type=click.IntRange(1),
              envvar="REASONER_MAX_ROWS", help="Rows (or triples) in one result.")
@click.option("--max-result-mb", default=64, show_default=True, type=click.IntRange(1),
              envvar="REASONER_MAX_RESULT_MB", help="Size of one serialised result.")
@click.option("--query-memory-mb", default=1024, show_default=True, type=click.IntRange(64),
              envvar="REASONER_QUERY_MEMORY_MB", help="Resident memory of one query worker.")
@click.option("--query-workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Queries evaluated at once (one process each); others wait.")
@click.option("--queue-timeout", default=30.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0.1, 3600),
              help="How long a query waits for a free worker before the answer is 503.")
@click.option("--max-body-mb", default=8, show_default=True, type=click.IntRange(1),
              help="Size of a request body.")
@click.option("--max-connections", default=64, show_default=True, type=click.IntRange(1),
              help="Open connections and requests at once; beyond it the server answers 503.")
@click.option("--idle-timeout", default=10.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0.5, 600),
              help="Close a connection that sends no complete request head (or no body) in "
                   "this time; idle keep-alive connections close after half of it.")
@click.option("--public-url", default=None, metavar="URL",
              help="The service's public base URL (behind a proxy): the audience CDS client "
                   "JWTs must name and the base of card links. Default: the URL requested.")
@click.option("--cds-clients", "cds_clients", default=None, type=click.Path(dir_okay=False),
              metavar="FILE", help="JSON file mapping each CDS client's iss to its JWK Set "
                                   "(public keys): the clients allowed to call the CRD hooks "
                                   "(docs/service.md). Without it the hooks refuse every call.")
@click.option("--api-token", "api_tokens", multiple=True, metavar="TOKEN",
              envvar="REASONER_API_TOKENS",
              help="A bearer token PAS ($submit, $inquire) and DTR accept (repeatable; env "
                   "REASONER_API_TOKENS, space-separated). CDS client JWTs are accepted too.")
@click.option("--decision-timeout", default=30.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0.5, 3600),
              help="Time limit of one hook call's or $submit's decisions (503 beyond it).")
@guarded
def serve(store_location, host, port, write_token, allow_hosts, allow_services, query_timeout,
          max_rows, max_result_mb, query_memory_mb, query_workers, queue_timeout, max_body_mb,
          max_connections, idle_timeout, public_url, cds_clients, api_tokens, decision_timeout):
    """Serve the store: SPARQL 1.1 Protocol endpoint at /sparql, a query page at /, a page per
    determination at /determination?iri=..., and the payer's service: CRD hooks at
    /cds-services, PAS at /fhir/Claim/$submit and $inquire (docs/service.md; limits and
    promises: docs/security.md)"""
    import threading

    from ..errors import InputError
    from ..server import is_loopback, make_server
    from ..server.app import LOOPBACK_HOSTS, Settings
    from ..server.queries import Limits
    from ..store import EmbeddedStore

    if store_location.startswith(("http://", "https://")):
        raise InputError("serve needs a store folder, not a URL (the URL is already an "
                         "endpoint)", source=store_location)
    limits = Limits(timeout=query_timeout, max_rows=max_rows,
                    max_bytes=max_result_mb * 1024 ** 2, memory=query_memory_mb * 1024 ** 2,
                    workers=query_workers, queue_timeout=queue_timeout,
                    allow_service=tuple(allow_services))
    from ..server.auth import load_clients

    settings = Settings(hosts=LOOPBACK_HOSTS + tuple(h.lower() for h in allow_hosts),
                        limits=limits, max_body=max_body_mb * 1024 ** 2,
                        body_timeout=idle_timeout, public_url=public_url,
                        decision_timeout=decision_timeout,
                        cds_clients=load_clients(cds_clients) if cds_clients else {},
                        api_tokens=tuple(t for given in api_tokens for t in given.split()))
    store = EmbeddedStore(store_location)
    try:
        server = make_server(store, host=host, port=port, write_token=write_token,
                             settings=settings, max_connections=max_connections,
                             header_timeout=idle_timeout, keep_alive=idle_timeout / 2)
    except OSError as exc:
        store.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = server.server_address[:2]
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}, beyond this machine's loopback: anyone who "
                   "can reach it can read every record. Put a TLS reverse proxy with "
                   "authentication in front of it (docs/security.md).", err=True)
    mode = "read-write with token" if write_token else "read-only"
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    threading.Thread(target=server.app.state.pages.warm, daemon=True).start()
    callers = (f"{len(settings.cds_clients)} CDS client(s), "
               f"{len(settings.api_tokens)} API token(s)")
    click.echo(f"serving {store_location} ({mode}) at http://{shown}:{bound_port}/ "
               f"(SPARQL endpoint /sparql; CRD /cds-services and PAS /fhir/Claim/$submit "
               f"with {callers}); Ctrl-C stops", err=True)
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
