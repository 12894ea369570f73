"""`python -m reasoner` runs the command line."""

from .cli.app import main

main()
