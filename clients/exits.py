"""The `cimhub` command's exit codes, and the one-line failure every command raises for its user's mistakes.

Standard library and click only, so any command module can use them without
slowing `cimhub --help`.
"""

from __future__ import annotations

import click

EXIT_OK = 0
EXIT_HUB_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4


class CommandFailed(click.ClickException):
    """A failure the user can fix, shown as one line `error: <message>` and exit `exit_code`; never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_HUB_ERROR) -> None:
        super().__init__(message)
        # click declares exit_code a ClassVar but reads it from the instance, as this sets it.
        self.exit_code = exit_code  # type: ignore[misc]


def missing_extra(command: str, extra: str, exc: ModuleNotFoundError) -> CommandFailed:
    """`command` needs packages that only the `extra` installs."""
    return CommandFailed(
        f"`cimhub {command}` needs the {extra} packages ({exc.name} is missing): "
        f"pip install 'cimhub-realtime[{extra}]'",
        EXIT_USAGE,
    )
