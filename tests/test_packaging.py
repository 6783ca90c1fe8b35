"""The wheel holds every package and data file, and each part installs and runs with only its extra.

Built from a copy of the tracked sources (as a clean clone has them), so a
file the working tree happens to hold cannot hide one that git would lose.
The expected contents come from the source tree itself: every folder under
protocol/, server/ and clients/ with its non-Python files (Lua, SQL, static).
A new subpackage or data file is therefore checked without editing this test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"protocol": "cimhub/protocol", "server": "cimhub/server", "clients": "cimhub/clients"}


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", "pyproject.toml", "setup.py", "README.md", *FOLDERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


def expected_wheel_files() -> set[str]:
    """Every tracked file under the three folders, at its `cimhub/...` path in the wheel."""
    expected = set()
    for name in tracked_files():
        folder, _, rest = name.partition("/")
        if folder in FOLDERS and rest:
            expected.add(f"{FOLDERS[folder]}/{rest}")
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("cimhub_realtime-*.whl")
    return built


def test_wheel_holds_every_tracked_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = expected_wheel_files() - names
    assert not missing, f"left out of the wheel: {sorted(missing)}"
    # The data files the hub loads at run time, named so a rename is noticed here too.
    for folder in ("server/store/lua", "server/messages/lua", "server/checkpoint/lua", "server/sql", "server/static"):
        assert any(name.startswith(f"cimhub/{folder}/") for name in names), folder
    assert "cimhub/protocol/py.typed" in names
    # Nothing outside the one `cimhub` namespace: no bare `server` or `tests` package.
    tops = {name.split("/")[0] for name in names if not name.startswith("cimhub_realtime-")}
    assert tops == {"cimhub"}


def test_wheel_metadata_names_the_distribution_and_its_extras(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (metadata_name,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
    metadata = archive.read(metadata_name).decode()
    assert "Name: cimhub-realtime" in metadata
    for extra in ("server", "client", "agent", "checkpoint", "test", "bench"):
        assert f"Provides-Extra: {extra}" in metadata
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(line.split()[1].split(">")[0] for line in required) == ["jsonpatch", "msgpack", "orjson", "pydantic"]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("venv")
    venv.create(path, with_pip=True)
    yield path


def pip_install(env: Path, *requirements: str) -> None:
    done = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_client_extra_installs_the_cli_without_the_hub(wheel: Path, fresh_venv: Path) -> None:
    pip_install(fresh_venv, f"{wheel}[client]")
    python = str(fresh_venv / "bin" / "python")
    imported = subprocess.run(
        [
            python,
            "-c",
            (
                "import cimhub.clients.client, cimhub.clients.http, cimhub.protocol.frames, importlib.util as u;"
                "print([m for m in ('starlette', 'uvicorn', 'redis', 'supabase', 'numpy', 'langgraph')"
                " if u.find_spec(m)])"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]", "the client extra pulled in server packages"
    cimhub = str(fresh_venv / "bin" / "cimhub")
    helped = subprocess.run([cimhub, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert helped.returncode == 0 and "subscribe" in helped.stdout
    # A server-only command says which extra it needs, in one line, instead of a traceback.
    served = subprocess.run([cimhub, "serve", "--dev"], capture_output=True, text=True, timeout=120, check=False)
    assert served.returncode == 2
    assert "cimhub-realtime[server]" in served.stderr and "Traceback" not in served.stderr
    assert len(served.stderr.strip().splitlines()) == 1, served.stderr


def test_checkpoint_extra_imports_the_saver(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    pip_install(env, f"{wheel}[checkpoint]")
    imported = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            (
                "from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver;"
                "import importlib.util as u;"
                # (Not websockets: langgraph-checkpoint's own dependencies bring it.)
                "print([m for m in ('starlette', 'uvicorn', 'supabase', 'numpy', 'psycopg', 'langgraph.graph')"
                " if u.find_spec(m)])"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]", "the checkpoint extra pulled in other parts"


def test_deploy_constraints_pin_every_server_requirement() -> None:
    """constraints/server.txt pins each package of the `server` extra, at a version the extra allows."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {}
    for line in (ROOT / "constraints" / "server.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = Version(version)
    for text in extras["server"]:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in constraints/server.txt"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement.specifier}"
