"""Access checks straight against Postgres: the SQL functions of server/sql/001_cimhub_access.sql.

For a hub that can reach the Supabase database (or any Postgres with the
migration applied). Connect as a role that may execute the functions: on
Supabase, ``postgres`` or ``service_role``; the functions are revoked from
``anon`` and ``authenticated``.
"""

from __future__ import annotations

import asyncio
from typing import LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from cimhub.protocol.errors import Unavailable

_MIGRATION = "server/sql/001_cimhub_access.sql"


class PostgresAccess:
    """AccessBackend over a direct Postgres connection (see AccessBackend for the guarantees).

    A check that fails on a dropped connection is tried once more on a fresh
    one; everything must finish within `timeout_s`, else Unavailable (retryable).
    """

    def __init__(self, database_url: str, *, max_connections: int = 4, timeout_s: float = 5.0) -> None:
        if max_connections < 1 or timeout_s <= 0:
            raise ValueError("max_connections must be >= 1 and timeout_s > 0")
        # prepare_threshold=None: no server-side prepared statements, which
        # Supabase's transaction-mode pooler (port 6543) does not support.
        self._pool: AsyncConnectionPool = AsyncConnectionPool(
            database_url,
            min_size=0,
            max_size=max_connections,
            kwargs={"autocommit": True, "prepare_threshold": None},
            check=AsyncConnectionPool.check_connection,
            open=False,
        )
        self._opened = asyncio.Lock()
        self._timeout_s = timeout_s

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool:
        return await self._ask("select public.cimhub_may_access_deal(%s, %s)", (user_id, deal_id))

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool:
        return await self._ask("select public.cimhub_deal_in_project(%s, %s)", (deal_id, project_id))

    async def aclose(self) -> None:
        await self._pool.close()

    async def _ask(self, query: LiteralString, params: tuple[str, str]) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                try:
                    answer = await self._query(query, params)
                except psycopg.OperationalError:
                    answer = await self._query(query, params)  # the pooled connection may have been dropped
        except TimeoutError:
            raise Unavailable(f"the access check did not finish within {self._timeout_s} s; try again") from None
        except pg_errors.UndefinedFunction:
            raise Unavailable(
                f"the access check function is missing: apply {_MIGRATION} to the database",
                retryable=False,
            ) from None
        except pg_errors.InsufficientPrivilege:
            raise Unavailable(
                "the database role of CIMHUB_DATABASE_URL may not run the access check function",
                retryable=False,
            ) from None
        except psycopg.Error as exc:
            raise Unavailable(f"the access check failed in the database ({type(exc).__name__}); try again") from None
        if not isinstance(answer, bool):
            raise Unavailable(f"the access check returned {type(answer).__name__}, not a boolean", retryable=False)
        return answer

    async def _query(self, query: LiteralString, params: tuple[str, str]) -> object:
        if self._pool.closed:
            async with self._opened:  # opened on first use: the hub builds this before its event loop runs
                if self._pool.closed:
                    await self._pool.open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            row = await cursor.fetchone()
        return None if row is None else row[0]
