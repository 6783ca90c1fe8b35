"""Import the CIM Builder's legacy Supabase `cims` table into a hub (issue 4, item 10).

Reads the table (server/sql/legacy_cims.sql) page by page through supabase-py,
in id order, and sends each row to the hub as one ``importFromSupabase``
mutation over ``POST /v1/mutate``, authenticated with a hub service key.

Safe to run again, or to resume after a crash: the mutation id is derived
from the row id (``import-<row id>``) and the CIM id from the row id too, so a
row already imported is reported as skipped and nothing changes. Each row ends
as one of:

* imported: a new CIM was created;
* skipped: the hub had it already (``imported: false`` or a duplicate mutation id);
* refused: the hub (or, with ``--dry-run``, the local validation) rejected the
  row; the reason is the error's code, message and path.

A retryable error (the hub overloaded, Redis unavailable) is retried a few
times with a growing pause before the row counts as refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import click
import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from cimhub.protocol.errors import CimhubError
from cimhub.protocol.mutations import MutationContext, get_mutation

MUTATION = "importFromSupabase"
TABLE = "cims"
RETRIES = 4


@dataclass
class Summary:
    imported: int = 0
    skipped: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    """Row id -> why the row was refused."""

    def reasons(self) -> Counter[str]:
        return Counter(reason for reason in self.refused.values())


def mutation_id_of(row_id: str) -> str:
    """The mutation id of one row's import: the same on every run, so a re-run is a no-op."""
    return f"import-{row_id}"


def import_args(row: dict[str, Any]) -> dict[str, Any]:
    """The `importFromSupabase` arguments for one legacy row (snake_case columns, JSONB as stored)."""
    args: dict[str, Any] = {
        "sourceId": str(row["id"]),
        "dealId": str(row["deal_id"]),
        "projectId": str(row["project_id"]),
        "userId": str(row["user_id"]),
        "title": row.get("title") or "",
    }
    for column, name in (
        ("workflow_state", "workflowState"),
        ("slides", "slides"),
        ("buyer_persona", "buyerPersona"),
        ("hero_context", "heroContext"),
        ("outline", "outline"),
    ):
        if row.get(column) is not None:
            args[name] = row[column]
    if row.get("created_at"):
        created = dt.datetime.fromisoformat(str(row["created_at"]))
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        args["createdAt"] = int(created.timestamp() * 1000)
    return args


def describe(error: Mapping[str, Any]) -> str:
    reason = f"{error.get('code', 'error')}: {error.get('message', '')}"
    return f"{reason} (at {error['path']})" if error.get("path") else reason


async def legacy_client(
    supabase_url: str, service_key: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncClient:
    """supabase-py's async client with the service key as the only credential (it bypasses RLS)."""
    http = httpx.AsyncClient(transport=transport, timeout=30.0)
    options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
    return await acreate_client(supabase_url, service_key, options=options)


async def count_rows(client: AsyncClient) -> int:
    response = await client.table(TABLE).select("id", count="exact").limit(1).execute()  # type: ignore[arg-type]
    return int(response.count or 0)


async def pages(client: AsyncClient, batch: int):  # type: ignore[no-untyped-def]
    """Rows in id order, `batch` at a time; keyset paging, so rows added meanwhile are not skipped twice."""
    last: str | None = None
    while True:
        query = client.table(TABLE).select("*").order("id").limit(batch)
        if last is not None:
            query = query.gt("id", last)
        rows = cast(list[dict[str, Any]], (await query.execute()).data)
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        last = str(rows[-1]["id"])


async def send(hub: httpx.AsyncClient, args: dict[str, Any], mutation_id: str) -> tuple[str, str | None]:
    """Import one row: ("imported" | "skipped" | "refused", reason)."""
    body = {"name": MUTATION, "args": args, "mutationId": mutation_id}
    pause = 0.2
    for attempt in range(RETRIES + 1):
        try:
            response = await hub.post("/v1/mutate", json=body)
        except httpx.TransportError as exc:
            reason = f"unavailable: cannot reach the hub ({type(exc).__name__})"
            retryable = True
        else:
            data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            if response.status_code == 200:
                fresh = not data.get("duplicate") and (data.get("result") or {}).get("imported", True)
                return ("imported" if fresh else "skipped"), None
            error = data.get("error") or {"code": f"http_{response.status_code}", "message": response.text[:200]}
            reason, retryable = describe(error), bool(error.get("retryable"))
        if not retryable or attempt == RETRIES:
            return "refused", reason
        await asyncio.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")


def check_locally(args: dict[str, Any]) -> str | None:
    """Why the hub would refuse these arguments as invalid, or None (the --dry-run check).

    Runs the mutation's pure function on no document, as the hub would for a
    first import; access and already-imported rows are not checked.
    """
    spec = get_mutation(MUTATION)
    try:
        parsed = spec.parse_args(args)
        spec.run(None, parsed, MutationContext(actor="service:dry-run", now=0, mutation_id="dry-run"))
    except CimhubError as exc:
        return describe(exc.to_wire())
    return None


async def migrate(
    legacy: AsyncClient,
    hub: httpx.AsyncClient | None,
    *,
    batch: int = 100,
    on_row: Callable[[str, str, str | None], None] = lambda row_id, outcome, reason: None,
) -> Summary:
    """Import every legacy row through `hub`; with `hub` None, only read and validate them (dry run)."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    summary = Summary()
    async for rows in pages(legacy, batch):
        for row in rows:
            row_id = str(row.get("id"))
            outcome: str
            reason: str | None
            try:
                args = import_args(row)
            except (KeyError, ValueError) as exc:
                outcome, reason = "refused", f"unreadable row: {type(exc).__name__}: {exc}"
            else:
                if hub is None:
                    reason = check_locally(args)
                    outcome = "refused" if reason else "imported"
                else:
                    outcome, reason = await send(hub, args, mutation_id_of(row_id))
            if outcome == "imported":
                summary.imported += 1
            elif outcome == "skipped":
                summary.skipped += 1
            else:
                summary.refused[row_id] = reason or "refused"
            on_row(row_id, outcome, reason)
    return summary


async def run(
    supabase_url: str,
    service_key: str,
    hub_url: str | None,
    token: str | None,
    *,
    dry_run: bool,
    batch: int,
    legacy_transport: httpx.AsyncBaseTransport | None = None,
    hub_transport: httpx.AsyncBaseTransport | None = None,
    show_progress: bool = True,
) -> Summary:
    """The whole import, as the command runs it (tests call this with their own transports)."""
    legacy = await legacy_client(supabase_url, service_key, transport=legacy_transport)
    total = await count_rows(legacy)
    hub: httpx.AsyncClient | None = None
    if not dry_run:
        if not hub_url or not token:
            raise click.UsageError("--hub-url and --token are needed unless --dry-run")
        hub = httpx.AsyncClient(
            base_url=hub_url.rstrip("/"),
            transport=hub_transport,
            timeout=30.0,
            headers={"authorization": f"Bearer {token}"},
        )
    label = "checking" if dry_run else "importing"
    try:
        with click.progressbar(
            length=total, label=f"{label} {total} CIMs", file=None if show_progress else io.StringIO()
        ) as bar:
            return await migrate(legacy, hub, batch=batch, on_row=lambda *_: bar.update(1))
    finally:
        if hub is not None:
            await hub.aclose()


@click.command("migrate-legacy")
@click.option("--supabase-url", envvar="CIMHUB_SUPABASE_URL", required=True, help="The Supabase project URL.")
@click.option(
    "--service-key",
    envvar="CIMHUB_SUPABASE_SERVICE_KEY",
    required=True,
    help="Supabase secret (or service_role) key: reads the legacy table past RLS.",
)
@click.option("--hub-url", help="The hub's HTTP base URL, e.g. https://hub.example.com.")
@click.option("--token", envvar="CIMHUB_TOKEN", help="A hub service key (cimhub_sk_...).")
@click.option("--dry-run", is_flag=True, help="Read and validate every row; send nothing.")
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 1000), help="Rows per page.")
def migrate_legacy(
    supabase_url: str, service_key: str, hub_url: str | None, token: str | None, dry_run: bool, batch: int
) -> None:
    """Import the legacy Supabase `cims` table into the hub; safe to run again."""
    summary = asyncio.run(run(supabase_url, service_key, hub_url, token, dry_run=dry_run, batch=batch))
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{verb} {summary.imported}, skipped {summary.skipped} (already imported), refused {len(summary.refused)}"
    )
    for reason, count in summary.reasons().most_common():
        click.echo(f"  {count} x {reason}")
    for row_id, reason in list(summary.refused.items())[:20]:
        click.echo(f"  row {row_id}: {reason}", err=True)
    if summary.refused:
        raise SystemExit(1)
