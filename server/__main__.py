"""`python -m cimhub.server`: `cimhub serve` under another name, with the same options, help and errors."""

import sys

from cimhub.clients.cli import run, serve

run(serve, sys.argv[1:], "python -m cimhub.server")
