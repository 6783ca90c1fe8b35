"""Who may hold a connection, and how fast each user may ask: bounds per client address and per user.

One client must not be able to starve the others (docs/security.md):

* connections per address (``max_connections_per_ip``), and of those, the
  ones still waiting to authenticate (``max_unauthenticated_per_ip``; the
  process-wide ``max_unauthenticated`` of Connections stays as a last bound);
* authenticated connections per user (``max_connections_per_user``);
* mutations, queries and subscribes per user per second, across all that
  user's connections (token buckets; over the rate: ``rate_limited``).

Counts are per process, as are the connections they bound. Every admit is
paired with exactly one release: callers hold a :class:`Ticket` and call
:meth:`Ticket.release` in a ``finally``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from cimhub.server.hub.ratelimit import TokenBucket
from cimhub.server.settings import Settings

Action = Literal["mutation", "query", "subscribe"]
MAX_TRACKED_USERS = 100_000


@dataclass
class Ticket:
    """One connection's place in the counts; released once, at the end of the connection."""

    admission: Admission
    ip: str
    authenticated: bool = False
    user: str | None = None
    released: bool = field(default=False)

    def authenticate(self, user: str) -> str | None:
        """Move from waiting-to-authenticate to `user`'s connections; a refusal message if over the cap."""
        return self.admission._authenticate(self, user)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission._release(self)


class Admission:
    """The counts and rate buckets of one hub process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._per_ip: dict[str, int] = {}
        self._waiting_per_ip: dict[str, int] = {}
        self._per_user: dict[str, int] = {}
        self._buckets: OrderedDict[tuple[str, Action], TokenBucket] = OrderedDict()

    def enter(self, ip: str) -> Ticket | str:
        """A ticket for a new connection from `ip`, waiting to authenticate; or why it is refused."""
        s = self._settings
        if self._per_ip.get(ip, 0) >= s.max_connections_per_ip:
            return f"over {s.max_connections_per_ip} connections from this address"
        if self._waiting_per_ip.get(ip, 0) >= s.max_unauthenticated_per_ip:
            return f"over {s.max_unauthenticated_per_ip} connections from this address waiting to authenticate"
        _add(self._per_ip, ip, 1)
        _add(self._waiting_per_ip, ip, 1)
        return Ticket(self, ip)

    def allow(self, user: str, action: Action) -> bool:
        """Spend one of `user`'s tokens for `action`; False when over the rate."""
        key = (user, action)
        bucket = self._buckets.get(key)
        if bucket is None:
            s = self._settings
            rate, burst = {
                "mutation": (s.user_mutations_per_second, s.user_mutation_burst),
                "query": (s.user_queries_per_second, s.user_query_burst),
                "subscribe": (s.user_subscribes_per_second, s.user_subscribe_burst),
            }[action]
            bucket = self._buckets[key] = TokenBucket(rate, burst)
            while len(self._buckets) > MAX_TRACKED_USERS:
                self._buckets.popitem(last=False)  # the least recently used: it has refilled long ago
        else:
            self._buckets.move_to_end(key)
        return bucket.take()

    def rate_of(self, action: Action) -> float:
        s = self._settings
        return {
            "mutation": s.user_mutations_per_second,
            "query": s.user_queries_per_second,
            "subscribe": s.user_subscribes_per_second,
        }[action]

    def _authenticate(self, ticket: Ticket, user: str) -> str | None:
        if ticket.authenticated:
            return None
        cap = self._settings.max_connections_per_user
        if self._per_user.get(user, 0) >= cap:
            return f"over {cap} connections for this user"
        _add(self._waiting_per_ip, ticket.ip, -1)
        _add(self._per_user, user, 1)
        ticket.authenticated, ticket.user = True, user
        return None

    def _release(self, ticket: Ticket) -> None:
        _add(self._per_ip, ticket.ip, -1)
        if ticket.authenticated and ticket.user is not None:
            _add(self._per_user, ticket.user, -1)
        else:
            _add(self._waiting_per_ip, ticket.ip, -1)


def user_key(identity: Any) -> str:
    """Whose counts and rates a caller uses: the user, or for a service with no user, the service."""
    return str(identity.user_id) if identity.user_id is not None else f"service:{identity.role}"


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value > 0:
        counts[key] = value
    else:
        counts.pop(key, None)
