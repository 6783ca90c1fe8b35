"""`python -m cimhub.clients`: the `cimhub` command, for when the console script is not on PATH."""

from .cli import main

main()
