"""The first ten minutes, as real processes: `cimhub serve` and `python -m cimhub.server` start, stop and fail cleanly.

Every failure a newcomer can cause (a busy port, no credentials, Redis out of
reach, a bad flag) must end the process with one `error:` line and a non-zero
exit code: no traceback, no hang, no embedded Redis left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need

from cimhub.server.embedded import free_port

pytestmark = pytest.mark.slow

BOUND_S = 60.0
"""Generous: a loaded machine imports slowly. The test asserts an exit, not a speed."""


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any CIMHUB_* or REDIS_URL a developer's shell may hold."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIMHUB_") and k != "REDIS_URL"}
    return {**env, **extra}


def cimhub(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cimhub.clients", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=BOUND_S,
        check=False,
    )


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def assert_one_error_line(stderr: str, expected: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], stderr
    assert stderr.strip().splitlines()[-1] == errors[0], "the error is the last thing printed"


def ready_within(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as answer:
            if answer.status == 200:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_busy_port_is_one_line_and_leaves_no_redis(busy_port: int, tmp_path: Path) -> None:
    need("redis-server")
    redis_port = free_port()
    env = clean_env(CIMHUB_EMBEDDED_REDIS_PORT=str(redis_port))
    done = cimhub(
        "serve", "--dev", "--port", str(busy_port), "--data-dir", str(tmp_path / "data"), env=env, cwd=tmp_path
    )
    assert done.returncode == 1
    assert_one_error_line(done.stderr, f"cannot listen on 127.0.0.1:{busy_port}")
    assert not listening(redis_port), "the embedded Redis was left running"


def test_no_credentials_is_one_line_before_redis_starts(tmp_path: Path) -> None:
    redis_port = free_port()
    env = clean_env(CIMHUB_EMBEDDED_REDIS_PORT=str(redis_port))
    done = cimhub("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "cimhub serve --dev")
    assert not (tmp_path / "data").exists(), "Redis was started before the settings were checked"
    assert len(done.stderr.strip().splitlines()) == 1


def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    closed = free_port()
    done = cimhub(
        "serve",
        "--dev",
        "--port",
        str(free_port()),
        "--redis-url",
        f"redis://127.0.0.1:{closed}/0",
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 3
    assert_one_error_line(done.stderr, f"cannot reach Redis at redis://127.0.0.1:{closed}/0")


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--port", "eighty"], "'--port'"), (["--bogus"], "--bogus"), (["--host", "0.0.0.0", "--dev"], "loopback only")],
)
def test_bad_arguments_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    env = clean_env(CIMHUB_EMBEDDED_REDIS_PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "cimhub.server", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=BOUND_S,
        check=False,
    )
    assert done.returncode == 2
    assert_one_error_line(done.stderr, expected)


def test_bad_setting_in_the_environment_is_one_line(tmp_path: Path) -> None:
    done = cimhub("serve", env=clean_env(CIMHUB_PORT="eighty"), cwd=tmp_path)
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "invalid settings: port")


def test_server_module_help_prints_help_and_starts_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cimhub.server", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=BOUND_S,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: python -m cimhub.server [OPTIONS]")
    for option in ("--host", "--port", "--redis-url", "--data-dir", "--dev"):
        assert option in done.stdout


def test_agent_with_the_wrong_redis_is_one_line(tmp_path: Path) -> None:
    closed = free_port()
    done = cimhub(
        "--token", "t", "agent", "--auto", env=clean_env(CIMHUB_EMBEDDED_REDIS_PORT=str(closed)), cwd=tmp_path
    )
    assert done.returncode == 3
    # The Redis URL came from the hub's own setting (CIMHUB_EMBEDDED_REDIS_PORT), not a hard-coded port.
    assert_one_error_line(done.stderr, f"redis://127.0.0.1:{closed}/0")


def test_serve_prints_the_urls_to_open_and_stops_its_redis_on_ctrl_c(tmp_path: Path) -> None:
    need("redis-server")
    port, redis_port = free_port(), free_port()
    env = clean_env(CIMHUB_EMBEDDED_REDIS_PORT=str(redis_port))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cimhub.clients",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + BOUND_S
        while not any("cimhub is listening" in line for line in seen):
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(seen)
            seen.append(line)
        assert f"open http://127.0.0.1:{port}/" in seen[-1]
        assert ready_within(f"http://127.0.0.1:{port}/readyz", BOUND_S)  # listening; ready once Redis answers
        assert listening(redis_port)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=BOUND_S)
        assert process.returncode == 0 and "Traceback" not in rest, rest
        assert not listening(redis_port), "the embedded Redis outlived the hub"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_event_loop_is_uvloop_when_installed_and_asyncio_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvloop

    from cimhub.server.main import loop_factory
    from cimhub.server.settings import Settings

    assert loop_factory(Settings(event_loop="auto")) is uvloop.new_event_loop
    assert loop_factory(Settings(event_loop="asyncio")) is None
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if the extra were not installed
    assert loop_factory(Settings(event_loop="auto")) is None
