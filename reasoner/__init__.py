"""Necessity reasoner: medical-necessity determinations from a knowledge graph.

The package root holds the core (no click): `api` is the entry point for callers,
`model` the one result model, `engines/` the third-party adapters, `render/` the
renderers, `intake/` the input mappers. `cli` is the only module that imports click.
"""

__version__ = "0.1.0"
