"""The npm package in clients/js is built from what is committed, and its types from the server's models.

`bash scripts/gen-types` regenerates clients/js/schema.json (tools/schema.py),
src/generated.ts (tools/gen-types.mjs), dist/ and the hub's server/static/cimhub.js
and board.js (tools/build.mjs). These tests do the same into a temporary
folder and fail when any committed file differs: a model changed in protocol/
without regenerating, or a source edited without rebuilding.
"""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clients" / "js"
STALE = "stale: run `bash scripts/gen-types` and commit the result"


def _node_modules() -> None:
    need("node")
    if not (PACKAGE / "node_modules" / ".bin" / "tsc").exists():
        pytest.fail("clients/js/node_modules is missing: `npm ci --prefix clients/js` (scripts/test does it)")


def _run(*argv: str | Path) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{argv} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_schema_matches_the_pydantic_models() -> None:
    fresh = json.loads(_run(sys.executable, PACKAGE / "tools" / "schema.py"))
    committed = json.loads((PACKAGE / "schema.json").read_text())
    assert fresh == committed, f"clients/js/schema.json is {STALE}"


def test_generated_types_match_the_schema(tmp_path: Path) -> None:
    _node_modules()
    out = tmp_path / "generated.ts"
    _run("node", PACKAGE / "tools" / "gen-types.mjs", PACKAGE / "schema.json", out)
    assert out.read_text() == (PACKAGE / "src" / "generated.ts").read_text(), f"clients/js/src/generated.ts is {STALE}"


def test_generated_types_name_every_mutation_and_close_code() -> None:
    from cimhub.protocol.close import STOP_RANGE, CloseCode
    from cimhub.protocol.mutations import MUTATIONS

    generated = (PACKAGE / "src" / "generated.ts").read_text()
    table = generated[generated.index("export interface MutationArgsByName") :]
    table = table[: table.index("}")]
    for name in MUTATIONS:
        assert f"  {name}: " in table, f"MutationArgsByName has no {name}"
    for code in CloseCode:
        assert f'"{code.name}": {code.value}' in generated
    assert f"CLOSE_STOP_RANGE = [{STOP_RANGE[0]},{STOP_RANGE[-1]}]" in generated


def test_built_files_match_the_sources(tmp_path: Path) -> None:
    _node_modules()
    _run("node", PACKAGE / "tools" / "build.mjs", "--out", tmp_path)
    built = sorted(p.name for p in (tmp_path / "dist").iterdir())
    assert built == sorted(p.name for p in (PACKAGE / "dist").iterdir()), f"clients/js/dist is {STALE}"
    stale = [
        name for name in built if not filecmp.cmp(tmp_path / "dist" / name, PACKAGE / "dist" / name, shallow=False)
    ]
    for name in ("cimhub.js", "board.js"):
        if not filecmp.cmp(tmp_path / "static" / name, ROOT / "server" / "static" / name, shallow=False):
            stale.append(f"server/static/{name}")
    assert not stale, f"{stale} are {STALE}"
