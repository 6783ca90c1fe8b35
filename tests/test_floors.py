"""The dependency floors in pyproject.toml are real.

The saver's tests pass on the lowest redis-py and langgraph-checkpoint allowed.

scripts/floors builds a virtualenv of its own with exactly those versions (read
from the `checkpoint` extra) and runs the saver's storage and conformance
tests there. A floor set too low fails here instead of in a user's install.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_saver_passes_on_the_lowest_allowed_redis_and_langgraph_checkpoint() -> None:
    done = subprocess.run(
        ["bash", "scripts/floors"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "floor: redis 5.2" in done.stderr and "floor: langgraph-checkpoint 4.3" in done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout
