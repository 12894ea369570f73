"""What every command shares: exit-code help, the error guard, atomic output, the process-wide
knowledge base and the options defined once. Imports nothing of the CLI package itself, so that
every command module can import it without a circle.

Exit codes: 0 ran (positive result), 1 negative result where the command asks for it
(validate: does not conform), 2 bad input (file, case, FHIR, query, policy id),
3 bad knowledge base, 4 internal error.
"""

from __future__ import annotations

import contextlib
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
  2  bad input: missing or malformed file, FHIR, query, unknown policy or version,
     unusable path or store folder, refused SERVICE; batch: a case failed
  3  bad knowledge base: ontology, knowledge or policy pack does not load
  4  internal error
"""


def _fail(exc) -> None:
    from ..errors import redact

    click.echo(f"error: {redact(str(exc))}", err=True)
    sys.exit(exc.exit_code)


#: the arguments that name the input a command reads, in the order a message prefers them
_INPUT_ARGUMENTS = ("case", "cases", "query", "paths")


def _input_named(kwargs: dict) -> str | None:
    for name in _INPUT_ARGUMENTS:
        value = kwargs.get(name)
        if value:
            return value if isinstance(value, str) else " ".join(map(str, value))
    return None


def guarded(func):
    """Turn ReasonerErrors into a one-line message and their exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from ..errors import EXIT_INTERNAL, ReasonerError

        try:
            return func(*args, **kwargs)
        except ReasonerError as exc:
            _fail(exc)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except RecursionError:
            # Input nested deeper than Python's recursion limit (a JSON or RDF structure
            # thousands of levels deep): the input's fault, exit 2, not an internal error.
            from ..errors import InputError

            _fail(InputError("input nested too deeply to read (deeper than the recursion "
                             "limit)", source=_input_named(kwargs)))
        except Exception as exc:  # pragma: no cover - the last resort
            if os.environ.get("REASONER_DEBUG"):
                raise
            from ..errors import redact

            click.echo(redact(f"internal error: {type(exc).__name__}: {exc}"), err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


def write_output(text: str, output: str | None) -> None:
    """Print, or write the file atomically (a temporary file renamed into place; its folder is
    created if missing). A folder that cannot be created or written (read-only, a file in the
    way, a path too long, a full disk) is bad input: exit 2 naming the path, and nothing of
    the file is left behind."""
    from ..errors import InputError

    if not output:
        click.echo(text, nl=False)
        return
    target = Path(output)
    try:
        if target.is_dir():
            raise InputError("is a folder: give a file name for -o/--output", source=output)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write the output here: {exc.strerror or exc} "
                         f"(folder {target.parent})", source=output) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write the output: {exc.strerror or exc}",
                         source=output) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reasoner(engine: str | None = None):
    """The loaded knowledge base; kept for the life of the process (one per NECESSITY_HOME and
    engine)."""
    return _load_reasoner(os.environ.get("NECESSITY_HOME"), engine)


@functools.lru_cache(maxsize=4)
def _load_reasoner(home: str | None, engine: str | None = None):
    from ..api import Reasoner

    return Reasoner.load(home, engine)


@contextlib.contextmanager
def engine_env(engine: str | None):
    """NECESSITY_ENGINE set to `engine` while the block runs (batch workers read it at start)."""
    saved = os.environ.get("NECESSITY_ENGINE")
    if engine:
        os.environ["NECESSITY_ENGINE"] = engine
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("NECESSITY_ENGINE", None)
        else:
            os.environ["NECESSITY_ENGINE"] = saved


engine_option = click.option(
    "--engine", type=click.Choice(["compiled", "pyshacl"]), default=None,
    help="Engine for rules, shapes and trace queries: compiled (pyoxigraph; the default) or "
         "pyshacl (the reference). A pack using SHACL the compiled engine does not implement "
         "runs on pySHACL either way (`reasoner check` says which).")


policy_option = click.option("--policy", "policy_id", required=True, metavar="ID",
                             help="Policy pack id (see `reasoner policies`).")
routed_policy_option = click.option(
    "--policy", "policy_id", default=None, metavar="ID",
    help="Policy pack id (see `reasoner policies`); default: every pack that covers the "
         "request's service code, in policy-id order (example packs only when named).")
policy_version_option = click.option(
    "--policy-version", "policy_version", default=None, metavar="VERSION",
    help="Policy version (needs --policy); default: the one in force on the service date, else "
         "the current one. The determination says which and why.")
output_option = click.option("--output", "-o", default=None, metavar="FILE",
                             help="Write to FILE (atomically) instead of standard output.")


def progress_lines(verb: str, every: float | None = None):
    """A progress callback `(done, total)` that writes "decided 40/110 cases" to standard error
    every few seconds (env REASONER_PROGRESS_SECONDS, default 5; 0: after every case), terminal
    or not, and a last line at the end if it wrote any: a command running for a minute never
    stays silent, one that takes a moment prints nothing extra."""
    import time

    if every is None:
        every = float(os.environ.get("REASONER_PROGRESS_SECONDS", "5"))
    state = {"last": time.monotonic(), "printed": False}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - state["last"] >= every or (done >= total and state["printed"]):
            state["last"], state["printed"] = now, True
            click.echo(f"{verb} {done}/{total} cases", err=True)
            sys.stderr.flush()

    return report
