"""The command line (click): the only package that imports click.

`app` holds the `reasoner` group; `common` what every command shares; one module per kind of
command: `decide` (determine, validate), `explore` (query, policies), `author` (check, test,
diff), `records` (batch, serve). Exit codes: see `common.EXIT_CODES_HELP` and the README.
"""

from .app import main

__all__ = ["main"]
