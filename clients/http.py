"""A blocking HTTP client for scripts and the CLI: POST /v1/mutate and /v1/query.

    with HttpClient("http://127.0.0.1:8000", token) as hub:
        created = hub.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Acme"})
        cim = hub.query("get", {"cimId": created.cim_id})

Each call is one request. A retryable failure (the hub unreachable or timing
out, or an error the hub marks retryable) is retried after a jittered back-off,
up to `retries` times; a mutation is always retried with the same mutation id,
so it applies at most once even when the first attempt did reach the hub.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx

from cimhub.protocol.errors import (
    AccessDenied,
    CimhubError,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
)

from .backoff import Backoff
from .errors import HubUnreachable
from .results import MutationResult

ACT_AS_HEADER = "x-cimhub-act-as"


class HttpClient:
    """Mutations and queries over HTTP with a bearer token. Close it (or use ``with``) when done."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        act_as: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: Backoff | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"expected a hub URL like http://127.0.0.1:8000, got {base_url!r}")
        headers = {"accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if act_as:
            headers[ACT_AS_HEADER] = act_as
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self._retries = retries
        self._backoff = backoff or Backoff()
        self._sleep = sleep or time.sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def mutate(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        mutation_id: str | None = None,
        expected_revision: int | None = None,
    ) -> MutationResult:
        """Run mutation `name`; `mutation_id` defaults to a new uuid4, kept across retries."""
        body: dict[str, Any] = {"name": name, "args": args or {}, "mutationId": mutation_id or str(uuid.uuid4())}
        if expected_revision is not None:
            body["expectedRevision"] = expected_revision
        return MutationResult.from_wire(self._post("/v1/mutate", body))

    def query(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Run query `name` and return its result."""
        return self._post("/v1/query", {"name": name, "args": args or {}}).get("result")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._backoff.reset()
        while True:
            try:
                return self._post_once(path, body)
            except CimhubError as exc:
                if not exc.retryable or self._backoff.attempts >= self._retries:
                    raise
                self._sleep(self._backoff.next())

    def _post_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(path, json=body)
        except httpx.TransportError as exc:
            raise HubUnreachable(f"cannot reach the hub at {self.base_url}: {exc or type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise CimhubError.from_wire(data["error"])
        if response.is_error:
            raise _status_error(response)
        if not isinstance(data, dict):
            raise CimhubError(f"{path} answered {response.status_code} without a JSON object", retryable=False)
        return data


def _status_error(response: httpx.Response) -> CimhubError:
    """An error for an answer that is not the hub's JSON (a proxy's error page, a wrong URL)."""
    status = response.status_code
    message = f"{response.request.url} answered {status} without a cimhub error body"
    if status == 401:
        return Unauthenticated(message)
    if status == 403:
        return AccessDenied(message)
    if status == 404:
        return NotFound(message + " (is the URL a cimhub hub?)")
    if status >= 500 or status == 429:
        return Unavailable(message)
    return InvalidInput(message)
