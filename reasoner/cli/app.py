"""The `reasoner` command group. Each command lives in a module of this package by what it
serves (deciding, exploring, authoring, records); the group imports a command's module only
when that command is asked for (or listed by `--help`), and those modules import only click and
`common`, so that `--help` never loads the knowledge base and no module imports another
command module (no import circle)."""

from __future__ import annotations

import importlib

import click

from .common import EXIT_CODES_HELP

#: command name -> module of this package that defines it (a click command of the same name).
COMMANDS = {
    "determine": "decide",
    "validate": "decide",
    "query": "explore",
    "policies": "explore",
    "check": "author",
    "test": "author",
    "diff": "author",
    "batch": "records",
    "serve": "records",
    "questionnaire": "dtr",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy-loading
    pattern)."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, cmd_name):
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return getattr(importlib.import_module(f"{__package__}.{module}"), cmd_name)


@click.group(cls=LazyGroup, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="necessity-reasoner")
def main():
    """Medical-necessity determinations from a knowledge graph: criteria as SHACL, evidence as RDF."""
