"""Configuration, read once at start-up into one typed object.

Every setting comes from an environment variable `CIMHUB_<NAME>` (or the
documented alias, such as `REDIS_URL`), or from a CLI flag that sets it. The
table of settings with their meaning is in docs/operations.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cimhub.server.connect import RedisLimits

Fsync = Literal["always", "everysec", "no"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIMHUB_", extra="ignore")

    # -- Redis ------------------------------------------------------------
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "CIMHUB_REDIS_URL"))
    """Where Redis is. Unset: start an embedded redis-server under `data_dir`."""
    data_dir: Path = Path(".data")
    """Where the embedded Redis keeps its append-only file."""
    embedded_redis_port: int = Field(default=6399, ge=1, le=65_535)
    """Loopback port of the embedded Redis (the CIM agent finds its checkpoints there)."""
    embedded_fsync: Fsync = "everysec"
    """appendfsync of the embedded Redis (see docs/durability.md for what each promises)."""
    key_prefix: str = "cimhub"
    """Prefix of every Redis key and channel, so several deployments (or tests) share a Redis."""
    redis_connect_timeout_s: float = Field(default=2.0, gt=0)
    """Longest wait to open a connection to Redis."""
    redis_timeout_s: float = Field(default=5.0, gt=0)
    """Longest wait for Redis to answer one command: a hung Redis fails requests as `unavailable` after this."""
    redis_retries: int = Field(default=1, ge=0)
    """Retries of a command whose pooled connection was dead (as all are after a Redis restart); never of a timeout."""
    redis_max_connections: int = Field(default=100, ge=1)
    """Connections to Redis per process; past it requests wait for a free one (`redis_pool_timeout_s`)."""
    redis_pool_timeout_s: float = Field(default=5.0, gt=0)
    """Longest wait for a free pooled connection before a request fails as `unavailable`."""
    readiness_timeout_s: float = Field(default=0.8, gt=0)
    """/readyz answers not-ready when Redis has not taken its probe write within this (so it answers within ~1 s)."""

    # -- store ------------------------------------------------------------
    patch_log_retention: int = Field(default=1_000, ge=1)
    """Patches kept per CIM (at least: history trims in whole snapshot intervals).

    A client further behind gets a fresh snapshot.
    """
    history_snapshot_every: int = Field(default=50, ge=0)
    """Every this many revisions the patch log also stores the whole CIM, so reading any past
    revision costs one snapshot and fewer than this many patches. 0: no snapshots, no history."""
    history_max_age_s: int = Field(default=0, ge=0)
    """Drop patch-log history older than this (whole snapshot intervals, applied as the CIM is written).

    0: no age limit.
    """
    presence_ttl_s: float = Field(default=30.0, gt=0)
    """A presence entry lives this long unless its hub refreshes it (every third of it).

    A dead hub's entries go within ~4/3 of it.
    """
    presence_max_per_cim: int = Field(default=100, ge=1)
    """Presence entries per CIM at once; joining beyond that is refused (presence_full)."""
    commit_replicas: int = Field(default=0, ge=0, le=16)
    """Acknowledge a commit only once this many replicas of its primary have it (Redis WAIT); 0: don't wait.

    With 1 on a Redis Cluster (or a primary with a replica and a failover
    manager), an acknowledged mutation survives the loss of its primary.
    """
    commit_replica_timeout_ms: int = Field(default=1_000, ge=1)
    """How long a commit waits for `commit_replicas`; past it the client gets a retryable `unavailable`."""
    idempotency_window_s: int = Field(default=86_400, ge=1)
    """How long a mutation id is remembered (24 h)."""
    max_commit_retries: int = Field(default=50, ge=1)
    """Re-runs of a mutation after a revision conflict before giving up (retryable error)."""
    max_document_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest CIM document, encoded as JSON; a bigger result is refused."""
    document_cache_size: int = Field(default=10_000, ge=0)
    """CIM documents kept in process memory to skip a read before each commit."""

    embedding_dimension: int = Field(default=1024, ge=1, le=65_536)
    """Dimension of message embeddings (Voyage 3.5: 1,024), checked on every write and search."""

    # -- hub --------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024)
    # permessage-deflate on the WebSocket (RFC 7692). Off by default: in fan-out it costs the hub
    # about half its CPU per delivery for ~1 KB patches (docs/benchmarks.md); turn it on where
    # bandwidth costs more than hub CPU. Either way a client that does not offer it gets plain frames.
    ws_per_message_deflate: bool = False
    max_subscriptions: int = Field(default=100, ge=1)
    mutations_per_second: float = Field(default=100.0, gt=0)
    mutation_burst: int = Field(default=200, ge=1)
    mutations_in_flight: int = Field(default=32, ge=1)
    """Mutations of different CIMs one connection runs at once (those of one CIM always run in order).

    256 may wait per connection; past that a mutation is refused as `overloaded`.
    """
    send_queue_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Per-connection send buffer; past it the connection is closed with 4008 and must resync."""
    heartbeat_s: float = Field(default=15.0, gt=0)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    sync_concurrency: int = Field(default=32, ge=1)
    """Snapshots and resumes served at once per process: a reconnect storm queues instead of stalling the hub."""
    catch_up_concurrency: int = Field(default=4, ge=1)
    """Resumes served from the patch log at once per process (each sends up to `max_catch_up` patches);
    the others wait for a slot, so catching up never stalls live subscribers or mutations."""
    catch_up_wait_s: float = Field(default=2.0, ge=0)
    """Longest wait for a catch-up slot; past it the resume gets a reset snapshot (one frame) instead."""
    max_catch_up: int = Field(default=1_000, ge=1)
    """Most patches a resume sends; a client further behind gets a reset snapshot (one frame, not thousands)."""
    access_recheck_s: float = Field(default=10.0, gt=0)
    """How often live subscriptions re-check access (revocation delay <= this + access_cache_ttl_s)."""
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per log line (time, level, logger, message), for log shippers."""
    shutdown_grace_s: float = Field(default=5.0, ge=0)
    event_loop: Literal["auto", "asyncio"] = "auto"
    """`auto`: uvloop when installed (the `server` extra has it), else asyncio's loop; `asyncio` forces the latter."""

    # -- auth ---------------------------------------------------------------
    dev_mode: bool = False
    """Local development: no Supabase, self-minted tokens, loopback only. Never in production."""
    dev_secret: str = "cimhub-insecure-development-secret-do-not-use"
    supabase_url: str | None = None
    supabase_jwt_secret: str | None = None
    supabase_service_key: str | None = None
    jwt_audience: str = "authenticated"
    jwt_leeway_s: int = Field(default=30, ge=0)
    database_url: str | None = None
    access_cache_ttl_s: float = Field(default=30.0, ge=0)
    access_denied_cache_ttl_s: float = Field(default=5.0, ge=0)
    service_keys: list[str] = Field(default_factory=list)
    """Service credentials accepted besides Supabase's: `sb_secret_...` keys and hub keys (`cimhub_sk_...`)."""
    allow_anonymous: bool = False
    """Accept Supabase anonymous sign-ins (refused by default)."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to open the WebSocket and, through CORS, to call the HTTP API
    and load /static/ (`["https://app.example.com"]`). Empty: any WebSocket origin, no CORS."""
    supabase_anon_key: str | None = None
    """The Supabase project's public anon key: the board signs users in with it (never a secret)."""
    auth_timeout_s: float = Field(default=10.0, gt=0)
    max_unauthenticated: int = Field(default=1_000, ge=1)

    def redis_limits(self) -> RedisLimits:
        """The Redis client limits these settings ask for (cimhub.server.store.connection)."""
        return RedisLimits(
            connect_timeout_s=self.redis_connect_timeout_s,
            timeout_s=self.redis_timeout_s,
            retries=self.redis_retries,
            max_connections=self.redis_max_connections,
            pool_timeout_s=self.redis_pool_timeout_s,
        )

    # -- limits per client (docs/security.md says what each one bounds) ------
    max_connections_per_user: int = Field(default=100, ge=1)
    """Authenticated connections one user (or one service acting for no user) may hold on this process."""
    max_connections_per_ip: int = Field(default=500, ge=1)
    """Connections, authenticated or not, from one client address on this process."""
    max_unauthenticated_per_ip: int = Field(default=20, ge=1)
    """Connections from one address still waiting to authenticate: one client cannot starve others' logins."""
    user_mutations_per_second: float = Field(default=200.0, gt=0)
    user_mutation_burst: int = Field(default=400, ge=1)
    user_queries_per_second: float = Field(default=100.0, gt=0)
    user_query_burst: int = Field(default=200, ge=1)
    user_subscribes_per_second: float = Field(default=50.0, gt=0)
    user_subscribe_burst: int = Field(default=200, ge=1)
    """Rates per user across all their connections on this process (mutations, queries, subscribes)."""
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    """A connection must send its request headers (or WebSocket upgrade) within this long."""
    http_body_timeout_s: float = Field(default=30.0, gt=0)
    """An HTTP request body must arrive in full within this long."""
    max_http_header_bytes: int = Field(default=16_384, ge=1024)
    max_open_connections: int = Field(default=10_000, ge=1)
    """Open connections and requests per process (uvicorn limit_concurrency): past it, new ones get 503."""
    patch_log_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Patch log bytes kept per CIM, besides the entry count: big patches cannot fill Redis."""

    # -- access backend under load -------------------------------------------
    access_timeout_s: float = Field(default=5.0, gt=0)
    """Each phase of one access check (connect, send, read, wait for a pooled connection)."""
    access_max_concurrency: int = Field(default=32, ge=1)
    """Access checks sent to Supabase/Postgres at once by this process (and its connection pool size)."""
    access_max_checks_per_user: int = Field(default=4, ge=1)
    """Distinct access checks about one user in flight at once; more are refused as rate_limited."""
    access_queue_timeout_s: float = Field(default=2.0, gt=0)
    """How long a check waits for one of the slots above before `unavailable`."""
    access_outage_grace_s: float = Field(default=30.0, ge=0)
    """While access cannot be re-checked, live subscriptions last this long before they end (fail closed)."""

    # -- JWKS -------------------------------------------------------------------
    jwks_fetch_deadline_s: float = Field(default=5.0, gt=0)
    """One JWKS fetch ends within this, however slowly Supabase answers."""
    jwks_max_age_s: float = Field(default=60.0, ge=0)
    """Key sets older than this are refreshed in the background: a removed key stops working within it."""
    jwks_min_refetch_s: float = Field(default=1.0, ge=0)
    """At most one JWKS fetch per this interval (unknown key ids cannot make the hub hammer Supabase)."""
    jwks_unknown_kid_ttl_s: float = Field(default=10.0, ge=0)
    """A key id missing from a fresh JWKS is refused without a fetch for this long."""
