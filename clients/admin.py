"""`cimhub admin`: operator commands that work on the hub's Redis directly, not through a hub."""

from __future__ import annotations

import asyncio
import time

import click

from . import config
from .exits import EXIT_UNREACHABLE, EXIT_USAGE, CommandFailed


@click.group(name="admin")
def admin() -> None:
    """Operator commands on the hub's Redis (no hub needed)."""


@admin.command(name="repair-indexes")
@click.option(
    "--redis-url",
    default=config.redis_url,
    show_default="$REDIS_URL or $CIMHUB_REDIS_URL, else redis://127.0.0.1:$CIMHUB_EMBEDDED_REDIS_PORT/0 (6399)",
    help="The hub's Redis: a redis+cluster:// URL for a Redis Cluster.",
)
@click.option("--key-prefix", default=config.key_prefix, show_default="$CIMHUB_KEY_PREFIX, else cimhub")
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=200, show_default=True, help="Documents per round trip."
)
def repair_indexes(redis_url: str, key_prefix: str, batch: int) -> None:
    """Rebuild the indexes by deal, user and status from the CIM documents, and the agent's checkpoint registries.

    On a Redis Cluster the indexes are written beside each commit and can fall
    behind a document when a hub dies in between (docs/scaling.md). Safe to run
    again and beside live hubs. Progress goes to stderr, the totals to stdout.
    """
    asyncio.run(_repair(redis_url, key_prefix, batch))


async def _repair(redis_url: str, key_prefix: str, batch: int) -> None:
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import RedisError

    from cimhub.server.checkpoint import AsyncCimhubRedisSaver
    from cimhub.server.connect import connect
    from cimhub.server.store.cims import CimStore
    from cimhub.server.store.keys import Keys
    from cimhub.server.store.repair import IndexRepair, repair_indexes

    try:
        redis = connect(redis_url)
    except ValueError as exc:
        raise CommandFailed(f"--redis-url: {exc}", EXIT_USAGE) from None
    started = time.monotonic()

    def progress(report: IndexRepair) -> None:
        click.echo(
            f"  {report.cims} CIMs read, {report.written} entries written; "
            f"{report.entries} entries checked, {report.removed} removed ({time.monotonic() - started:.1f} s)",
            err=True,
        )

    try:
        await redis.ping()
        cluster = isinstance(redis, RedisCluster)
        store = CimStore(redis, Keys(key_prefix, cluster=cluster))  # type: ignore[arg-type]  # as in app.py
        if cluster:
            report = await repair_indexes(store, batch=batch, progress=progress)
            click.echo(
                f"indexes: {report.cims} CIMs, {report.written} entries written, {report.removed} stray entries removed"
            )
        else:
            click.echo("indexes: one Redis node writes them inside each commit; nothing to repair")
        saver = AsyncCimhubRedisSaver(redis, key_prefix=key_prefix)
        registries = await saver.arepair_registries()
        click.echo(
            f"checkpoint registries: {registries.threads} threads, "
            f"{registries.added} entries added, {registries.removed} removed"
        )
        await store.aclose()
    except (OSError, RedisError) as exc:
        raise CommandFailed(f"cannot repair through Redis at {redis_url}: {exc}", EXIT_UNREACHABLE) from None
    finally:
        await redis.aclose()
