"""Static checks that guard the architecture: mypy strict passes, and the protocol core does no I/O."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_passes_on_the_whole_package() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "typecheck")], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_protocol_pulls_in_no_io_libraries() -> None:
    code = (
        "import sys, cimhub.protocol.frames, cimhub.protocol.codec, cimhub.protocol.mutations, "
        "cimhub.protocol.patch, cimhub.protocol.cascade, cimhub.protocol.schema, cimhub.protocol.errors, "
        "cimhub.protocol.close, cimhub.protocol.queries, cimhub.protocol.messages\n"
        "banned = ['asyncio', 'redis', 'starlette', 'uvicorn', 'websockets', 'httpx']\n"
        "print(','.join(name for name in banned if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"protocol imported {result.stdout.strip()}"
