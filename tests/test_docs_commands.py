"""Every shell command in README.md, docs/cli.md and docs/client.md runs as printed, against a real hub.

The ```sh blocks of each file are run in order as one bash script (so a
variable set in one block, like $CIM, is there in the next, as in the
walkthroughs' terminals), with `set -e`: a command that fails fails the test
and names itself. The hub is a real one in dev mode on a free port; the
script's environment names it the way a reader's does (CIMHUB_PORT,
REDIS_URL), and `.venv` is this test's virtualenv.

A few commands are shown but not run here, each for a reason in SHOWN_NOT_RUN
(most are run by another test); commands that run until Ctrl-C (live views)
run under `timeout -s INT`, which is a Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubproc import HubProcess, start_hub

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/cli.md", "docs/client.md"]

SHOWN_NOT_RUN = [
    (r"^bash scripts/(serve|test)\b", "the two set-up commands: test_first_run runs serve, the suite is scripts/test"),
    (r"\bcimhub serve\b", "runs the hub until Ctrl-C: tests/test_first_run.py starts, stops and breaks it"),
    (r"\[\.\.\.\]", "[...] stands for an embedding's 1,024 numbers"),
    (r"\bmigrate-legacy\b", "needs a Supabase project: tests/test_auth_hub.py runs the import against PostgREST"),
    (r"\bpip install\b", "installs from the package index: tests/test_packaging.py installs the extras"),
]
LONG_RUNNING = re.compile(r"(cimhub subscribe|watch\.py)")
LIVE_VIEW_S = 8


def shell_commands(markdown: str) -> list[str]:
    """The commands of every ```sh block: continued lines joined, a heredoc kept with its command."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            command = lines[i]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command += "\n" + lines[i]
            heredoc = re.search(r"<<'?(\w+)'?", command)
            if heredoc:
                end = heredoc.group(1)
                while i + 1 < len(lines):
                    i += 1
                    command += "\n" + lines[i]
                    if lines[i] == end:
                        break
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(command)
            i += 1
    return commands


def script_for(commands: list[str]) -> tuple[str, list[str]]:
    """A bash script running `commands` (with their skip reasons), and the list of commands it runs."""
    lines = ["set -euo pipefail"]
    ran: list[str] = []
    for number, command in enumerate(commands):
        reason = next((why for pattern, why in SHOWN_NOT_RUN if re.search(pattern, command)), None)
        if reason is not None:
            lines.append(f"echo {shlex.quote(f'--- not run ({reason}): {number}')} >&2")
            continue
        lines.append(f"echo '--- running command {number}' >&2")
        if LONG_RUNNING.search(command):
            # A live view: Ctrl-C it after a while; 124 is timeout's "I sent the signal".
            # (The newline ends a trailing `# comment` of the command before `||`.)
            lines.append(f"{{ timeout -s INT {LIVE_VIEW_S} {command}\n}} || test $? -eq 124")
        else:
            lines.append(command)
        ran.append(command)
    return "\n".join(lines) + "\n", ran


def test_extraction_keeps_heredocs_and_continued_lines() -> None:
    text = "```sh\na=1 \\\n  b=2\ncat > f <<'PY'\nx\nPY\n# a comment\necho $a\n```\n"
    assert shell_commands(text) == ["a=1 \\\n  b=2", "cat > f <<'PY'\nx\nPY", "echo $a"]


@pytest.fixture
def hub(redis_url: str, key_prefix: str) -> Iterator[HubProcess]:
    with start_hub(redis_url, key_prefix) as running:
        yield running


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_runs_as_printed(doc: str, hub: HubProcess, tmp_path: Path) -> None:
    script, ran = script_for(shell_commands((ROOT / doc).read_text()))
    if doc == "docs/client.md":
        assert ran == [], "docs/client.md has Python examples only; if it gains shell commands, they run here"
        return
    assert ran, f"no command of {doc} ran"
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIMHUB_") and k != "REDIS_URL"}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        CIMHUB_PORT=str(hub.port),
        REDIS_URL=hub.env["REDIS_URL"],
        CIMHUB_KEY_PREFIX=hub.env["CIMHUB_KEY_PREFIX"],
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    where = [line for line in done.stderr.splitlines() if line.startswith("--- running")]
    assert done.returncode == 0, (
        f"{doc}: {where[-1] if where else 'before the first command'} failed:\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stdout + done.stderr
