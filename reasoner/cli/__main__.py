"""`python -m reasoner.cli` runs the command line."""

from .app import main

main()
