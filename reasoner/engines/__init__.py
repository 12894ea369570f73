"""Adapters: one module per third-party engine."""
