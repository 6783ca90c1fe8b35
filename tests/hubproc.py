"""A real hub process for end-to-end tests: ``python -m cimhub.server`` on a loopback port.

Usage::

    with start_hub(redis_url, key_prefix, send_queue_bytes=65536) as hub:
        async with websockets.connect(hub.ws_url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": hub.token("user-1")}).decode())

`start_hub` runs the hub in dev mode (self-minted tokens, every user sees every
deal) against the given Redis and key prefix, waits until ``/readyz`` answers
200, and stops it (SIGTERM, then SIGKILL) when the block ends. Extra keyword
arguments are settings: ``heartbeat_s=0.2`` becomes ``CIMHUB_HEARTBEAT_S=0.2``;
a name already in upper case (``REDIS_URL``) is passed as it is. Only the
variables given here reach the hub: ``CIMHUB_*`` variables of the test's own
environment are dropped, so a developer's shell cannot change a test.

The hub's stdout and stderr go to a file (`HubProcess.log_path`); a hub that
exits or is not ready in time raises `HubStartError` with the end of that log.
When the block ends, every line of that log is scanned for the tokens minted
with `HubProcess.token` and the service keys the hub was given: one found
raises `CredentialLeak` (docs/security.md: credentials are never logged).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cimhub.server.auth.tokens import USER_ROLE, DevTokenIssuer
from cimhub.server.embedded import free_port
from cimhub.server.settings import Settings

__all__ = ["CredentialLeak", "HubProcess", "HubStartError", "start_hub"]

DEFAULT_DEV_SECRET: str = Settings.model_fields["dev_secret"].default
START_TIMEOUT_S = 30.0


class HubStartError(RuntimeError):
    """The hub process exited, or did not become ready within the time allowed."""


class CredentialLeak(AssertionError):
    """A credential given to or minted for the hub appeared in its log."""


class HubProcess:
    """One running hub. Built by `start_hub`; not meant to be constructed directly."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path, env: dict[str, str]) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        """HTTP base URL, without a trailing slash."""
        self.ws_url = f"ws://127.0.0.1:{port}/v1/ws"
        self._issuer = DevTokenIssuer(env.get("CIMHUB_DEV_SECRET", DEFAULT_DEV_SECRET))
        self.credentials: set[str] = set(json.loads(env.get("CIMHUB_SERVICE_KEYS", "[]")))
        """Tokens minted by `token()` and the hub's service keys: none may appear in its log."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def token(self, user_id: str = "user-1", *, ttl_s: int = 3600, role: str = USER_ROLE) -> str:
        """A dev token this hub accepts; ``role="service_role"`` for a service credential."""
        token = str(self._issuer.mint(user_id, ttl_s=ttl_s, role=role))
        self.credentials.add(token)
        return token

    def check_log_for_credentials(self) -> None:
        """Raise CredentialLeak if any of `credentials` is in the hub's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return
        leaked = [c[:12] + "..." for c in self.credentials if c in text]
        if leaked:
            raise CredentialLeak(f"credentials in the hub's log: {leaked}")

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful shutdown) and wait; SIGKILL if it outlives `timeout`. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL: a crash, not a shutdown. Returns the exit code."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the hub's output, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until GET /readyz answers 200; raises HubStartError if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise HubStartError(f"hub exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise HubStartError(f"hub not ready within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)


def _env_name(name: str) -> str:
    return name if name.isupper() else f"CIMHUB_{name.upper()}"


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)


def hub_env(redis_url: str, key_prefix: str, port: int, **settings: Any) -> dict[str, str]:
    """The environment `start_hub` gives the hub process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIMHUB_") and k != "REDIS_URL"}
    env.update(
        {
            "REDIS_URL": redis_url,
            "CIMHUB_KEY_PREFIX": key_prefix,
            "CIMHUB_PORT": str(port),
            "CIMHUB_HOST": "127.0.0.1",
            "CIMHUB_DEV_MODE": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({_env_name(k): _env_value(v) for k, v in settings.items()})
    return env


@contextlib.contextmanager
def start_hub(redis_url: str, key_prefix: str, port: int | None = None, **settings: Any) -> Iterator[HubProcess]:
    """Run a hub for the duration of the block; yields once it is ready.

    With no `port` a free one is picked (and another tried if that one is taken
    meanwhile). The hub is stopped with SIGTERM when the block ends, unless the
    test already stopped it.
    """
    attempts = 3 if port is None else 1
    with tempfile.TemporaryDirectory(prefix="cimhub-hub-") as tmp:
        for attempt in range(attempts):
            chosen = port or free_port()
            env = hub_env(redis_url, key_prefix, chosen, **settings)
            log_path = Path(tmp) / f"hub-{attempt}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "cimhub.server"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                    start_new_session=True,
                )
            hub = HubProcess(process, chosen, log_path, env)
            try:
                hub.wait_ready()
                break
            except HubStartError:
                hub.kill()
                if attempt + 1 == attempts or "address already in use" not in hub.log_tail().lower():
                    raise
        try:
            yield hub
        finally:
            hub.terminate()
        hub.check_log_for_credentials()
