"""The index writes of one CIM on a Redis Cluster, one index.lua call per slot (no I/O here).

On a cluster the by-deal, by-user and by-status indexes each live in the slot
of their own hash tag, so a commit's index entries fall in up to four slots
(deal, user, old and new status). Grouping them by slot gives one script call
per slot; the store sends those calls at once, so a commit waits one round
trip for all of its index writes instead of one per index. The deal-list event
rides on the call for the deal's slot (its channel shares the deal's hash tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.crc import key_slot

from cimhub.server.store.keys import Keys

IndexOp = Literal["add", "remove", "forget"]


@dataclass(frozen=True)
class IndexEntry:
    """One change to one index: add the CIM at `score`, remove it (guarded), or forget it (unguarded)."""

    index: str
    op: IndexOp
    score: int = 0


@dataclass(frozen=True)
class IndexCall:
    """KEYS and ARGV of one index.lua call: every entry in one slot."""

    keys: list[str]
    args: list[Any]


def entries_for(
    keys: Keys, doc: dict[str, Any] | None, *, deal_id: str = "", user_id: str = "", status: str = ""
) -> list[IndexEntry]:
    """The entries that make the indexes agree with `doc` (None: the CIM is gone, so its entries are removed).

    For a deleted CIM the caller names the deal, user and status it had.
    """
    if doc is None:
        return [
            IndexEntry(keys.by_deal(deal_id), "remove"),
            IndexEntry(keys.by_user(user_id), "remove"),
            IndexEntry(keys.by_status(status), "remove"),
        ]
    score = int(doc["updatedAt"])
    return [
        IndexEntry(keys.by_deal(doc["dealId"]), "add", score),
        IndexEntry(keys.by_user(doc["userId"]), "add", score),
        IndexEntry(keys.by_status(doc["status"]), "add", score),
    ]


def calls(
    keys: Keys,
    cim_id: str,
    revision: int,
    entries: Sequence[IndexEntry],
    *,
    epoch: str,
    at: int,
    publish: tuple[str, bytes] | None = None,
) -> list[IndexCall]:
    """index.lua calls writing `entries` at `revision`, one per slot, in first-seen order.

    `epoch` and `at` (the commit's updatedAt, ms) order writes of different
    epochs: the same CIM id deleted and created again starts again at revision
    1, so revisions are compared only within one epoch, and a later epoch is
    the one committed later.

    `publish` (channel, message) goes with the call whose slot is the channel's:
    the deal channel and the by-deal index share the deal's hash tag, so
    entries that include the deal's index always have that call.
    """
    by_slot: dict[int, list[IndexEntry]] = {}
    for entry in entries:
        by_slot.setdefault(key_slot(entry.index.encode()), []).append(entry)
    publish_slot = key_slot(publish[0].encode()) if publish else None
    if publish_slot is not None and publish_slot not in by_slot:
        raise ValueError(f"no index entry shares the slot of channel {publish[0] if publish else ''!r}")
    out = []
    for slot, group in by_slot.items():
        call_keys: list[str] = []
        ops: list[Any] = []
        for entry in group:
            call_keys += [entry.index, keys.index_guard(entry.index)]
            ops += [entry.op, entry.score]
        channel, message = publish if publish and slot == publish_slot else ("", b"")
        out.append(IndexCall(call_keys, [cim_id, revision, epoch, at, channel, message, *ops]))
    return out
