"""Benchmark: what authorisation costs an authorised mutation, warm cache.

Usage::

    .venv/bin/python bench/bench_auth.py            # 3,000 mutations per variant
    .venv/bin/python bench/bench_auth.py --quick    # 500

Starts its own PostgreSQL (tests/pg.py: initdb on a free port, the shipped
migrations applied) and an embedded redis-server, both in temporary folders.
Two hubs' engine paths are built side by side, each with its own key prefix:

* ``authorised``: the real PostgresAccess behind CachedAccess (as a hub with
  CIMHUB_DATABASE_URL runs it), the caller a project member; the cache is
  warmed first and its TTL outlasts the run, so this measures the check as
  most mutations meet it: a cached decision, no Postgres round trip.
* ``dev (no checks)``: DevAccess, which answers True without asking anyone.

Each mutation is ``updateState`` through ``Dispatcher.mutate`` (validation,
authorisation, commit to Redis), one at a time; the two variants alternate
mutation by mutation, so load on the host skews neither.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cimhub.server.app import Services, open_services
from cimhub.server.auth.access import CachedAccess, DevAccess
from cimhub.server.auth.postgres_access import PostgresAccess
from cimhub.server.auth.tokens import Identity
from cimhub.server.embedded import embedded_redis
from cimhub.server.settings import Settings
from pg import PostgresCluster, apply_migrations, postgres_bindir, prepare_supabase_roles


def seed_membership(url: str) -> tuple[str, str, str]:
    """A project, a deal in it and a member: (project, deal, user)."""
    project, deal, user = (str(uuid.uuid4()) for _ in range(3))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into projects (id, name) values (%s, 'Bench')", (project,))
        conn.execute("insert into deals (id, project_id, name) values (%s, %s, 'Bench deal')", (deal, project))
        conn.execute("insert into project_members (project_id, user_id) values (%s, %s)", (project, user))
    return project, deal, user


async def run(count: int) -> None:
    bindir = postgres_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (apt-get install -y postgresql); or set CIMHUB_PG_BINDIR")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        url = cluster.create_database("cimhub_bench")
        prepare_supabase_roles(url)
        apply_migrations(url)
        project, deal, user = seed_membership(url)
        with tempfile.TemporaryDirectory(prefix="cimhub-bench-auth-") as data_dir:
            async with embedded_redis(Path(data_dir)) as redis:
                await compare(redis.url, url, project, deal, user, count)
    finally:
        cluster.stop()


async def compare(redis_url: str, database_url: str, project: str, deal: str, user: str, count: int) -> None:
    caller = Identity(user_id=user, role="authenticated", is_service=False)
    variants = {
        "authorised": CachedAccess(PostgresAccess(database_url), ttl_s=3600, denied_ttl_s=3600),
        "dev (no checks)": DevAccess(),
    }
    async with contextlib.AsyncExitStack() as stack:
        services: dict[str, Services] = {}
        cims: dict[str, str] = {}
        for name, access in variants.items():
            settings = Settings(key_prefix=f"bench{uuid.uuid4().hex[:8]}", mutations_per_second=1e9)
            svc = await stack.enter_async_context(open_services(settings, redis_url, verifier=None, access=access))
            stack.push_async_callback(delete_keys, svc)
            services[name] = svc
            result = await svc.dispatcher.mutate(
                caller, "create", {"dealId": deal, "projectId": project, "title": "Bench"}, uuid.uuid4().hex, None
            )
            cims[name] = result.cim_id
        timings: dict[str, list[float]] = {name: [] for name in variants}
        warmup = min(100, count // 5)
        for i in range(warmup + count):
            for name, svc in services.items():
                args = {"cimId": cims[name], "title": f"Bench {i}"}
                started = time.perf_counter()
                await svc.dispatcher.mutate(caller, "updateState", args, uuid.uuid4().hex, None)
                if i >= warmup:
                    timings[name].append(time.perf_counter() - started)
        report(timings)


async def delete_keys(svc: Services) -> None:
    keys = [key async for key in svc.redis.scan_iter(match=f"{svc.settings.key_prefix}:*", count=1000)]
    if keys:
        await svc.redis.delete(*keys)


def report(timings: dict[str, list[float]]) -> None:
    print(f"{'variant':<18} {'mutations':>9} {'mutations/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
    rates = {}
    p50s = {}
    for name, samples in timings.items():
        ordered = sorted(samples)
        rates[name] = len(samples) / sum(samples)
        p50s[name] = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"{name:<18} {len(samples):>9,} {rates[name]:>12,.0f} {p50s[name] * 1000:>8.3f} {p99 * 1000:>8.3f}")
    throughput = (rates["dev (no checks)"] / rates["authorised"] - 1) * 100
    latency = (p50s["authorised"] / p50s["dev (no checks)"] - 1) * 100
    print(f"overhead of authorisation (warm cache): {throughput:+.1f}% time per mutation, {latency:+.1f}% p50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 mutations per variant instead of 3,000")
    parser.add_argument("--count", type=int, default=None, help="mutations per variant")
    options = parser.parse_args()
    count = options.count or (500 if options.quick else 3_000)
    asyncio.run(run(count))


if __name__ == "__main__":
    main()
