"""`python -m reasoner` runs the command line."""

from .cli import main

main()
