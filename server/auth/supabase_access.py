"""Access checks through Supabase's Data API: the SQL functions called by RPC.

The request is ``POST <SUPABASE_URL>/rest/v1/rpc/cimhub_may_access_deal`` with
the service key in ``apikey`` and ``Authorization: Bearer``, and the arguments
as a JSON object. It replaces the seed's embedded select (seed §2), which
fails open without both ``!inner`` hints (docs/auth.md).

HTTP outcomes: a boolean body is the answer; 401/403 (the key is not a service
key) and 404 (the function is missing, or not in PostgREST's schema cache)
raise Unavailable with retryable false, since retrying cannot help until an
operator acts; 408, 429, 5xx, timeouts and network errors raise Unavailable,
retryable. Nothing is ever read as a grant.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from cimhub.protocol.errors import Unavailable

logger = logging.getLogger("cimhub.auth")

_MIGRATION = "server/sql/001_cimhub_access.sql"


async def _raise_for_status(response: httpx.Response) -> None:
    # postgrest-py folds every error body into an APIError without the HTTP
    # status; raising here, in the hub's own HTTP client, keeps the status.
    if not response.is_success:
        await response.aread()
        response.raise_for_status()


class SupabaseAccess:
    """AccessBackend over supabase-py's async client (see AccessBackend for the guarantees).

    `service_key` is the project's secret key (``sb_secret_…``) or legacy
    ``service_role`` JWT. `transport` replaces httpx's network transport
    (tests). Call :meth:`aclose` when done.
    """

    def __init__(
        self,
        supabase_url: str,
        service_key: str,
        *,
        timeout_s: float = 5.0,
        max_connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout_s <= 0 or max_connections < 1:
            raise ValueError("timeout_s must be > 0 and max_connections >= 1")
        self._url = supabase_url
        self._service_key = service_key
        self._timeout_s = timeout_s
        # httpx's own timeouts (connect, read, write, and the wait for a pooled
        # connection) end a slow check. Never asyncio.timeout around a request:
        # cancelling httpcore mid-request can leak pool slots until every check
        # fails (the hub then answered `unavailable` without sending anything).
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            event_hooks={"response": [_raise_for_status]},
        )
        self._client: AsyncClient | None = None
        self._client_lock = asyncio.Lock()

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool:
        return await self._ask("cimhub_may_access_deal", {"p_user_id": user_id, "p_deal_id": deal_id})

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool:
        return await self._ask("cimhub_deal_in_project", {"p_deal_id": deal_id, "p_project_id": project_id})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _supabase(self) -> AsyncClient:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                # No user session: the service key is the only credential, never refreshed.
                options = AsyncClientOptions(
                    httpx_client=self._http,
                    auto_refresh_token=False,
                    persist_session=False,
                    postgrest_client_retry=False,
                )
                self._client = await acreate_client(self._url, self._service_key, options=options)
            return self._client

    async def _ask(self, function: str, params: dict[str, str]) -> bool:
        client = await self._supabase()
        try:
            response = await client.rpc(function, params).execute()
        except httpx.TimeoutException:
            raise Unavailable(
                f"Supabase did not answer the access check within {self._timeout_s} s; try again"
            ) from None
        except httpx.HTTPStatusError as exc:
            raise _status_error(function, exc.response) from None
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach Supabase for the access check ({type(exc).__name__}); try again") from None
        if not isinstance(response.data, bool):
            raise Unavailable(
                f"Supabase answered {function} with {type(response.data).__name__}, not a boolean",
                retryable=False,
            )
        return response.data


def _status_error(function: str, response: httpx.Response) -> Unavailable:
    status = response.status_code
    logger.error("access check %s: HTTP %d from Supabase: %.500s", function, status, response.text)
    if status in (401, 403):
        return Unavailable(
            f"Supabase refused the access check (HTTP {status}): CIMHUB_SUPABASE_SERVICE_KEY must be "
            "the project's secret or service_role key",
            retryable=False,
        )
    if status == 404:
        return Unavailable(
            f"Supabase has no function {function} (HTTP 404): apply {_MIGRATION} and reload the schema cache",
            retryable=False,
        )
    if status in (408, 429) or status >= 500:
        return Unavailable(f"Supabase could not run the access check (HTTP {status}); try again")
    return Unavailable(f"Supabase rejected the access check (HTTP {status})", retryable=False)
