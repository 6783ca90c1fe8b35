"""Runs the browser client's JavaScript tests (tests/js/, node's built-in runner) from pytest.

Fails with node's output when they fail. Without node the test skips locally
and fails under CI=true, so a green CI run means the JavaScript really ran.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import need

ROOT = Path(__file__).resolve().parent.parent


def test_node_tests_pass() -> None:
    node = need("node")
    completed = subprocess.run(
        [node, "--test", "tests/js/"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"`node --test tests/js/` exited with {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
        )
    assert "# fail 0" in completed.stdout, completed.stdout
