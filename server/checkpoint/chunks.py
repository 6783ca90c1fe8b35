"""Large channel values in pieces, so that no single Redis command holds the server for long.

A Lua script copies its arguments in and its reply out, and Redis runs
nothing else meanwhile: a 5 MB channel value in one script call held Redis
for 20-60 ms on the test machine (bench/bench_checkpoint.py --big). So a
value over CHUNK_BYTES goes into its blob field as a small marker, and its
bytes into chunk fields of the same hash beside it, each written by a plain
HSET sent before the put script and read by a plain HGET after get.lua, in
the same pipeline, one command per chunk. collect_blobs (common.lua) keeps a
chunk exactly as long as its blob field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cimhub.server.checkpoint.codec import pairs
from cimhub.server.checkpoint.layout import RECORD_SEPARATOR, UNIT_SEPARATOR
from cimhub.server.checkpoint.steps import Plan, Run

CHUNK_BYTES = 256 * 1024
"""Values larger than this are stored in chunks of this size."""

_NUL = b"\x00"
_US = UNIT_SEPARATOR.encode()
_RS = RECORD_SEPARATOR.encode()


def marker(count: int) -> bytes:
    """What the blob field holds when its value is in `count` chunks.

    A value stored whole starts with its serde type name, never empty, so a
    leading NUL cannot be mistaken for one.
    """
    return b"%s%d" % (_NUL, count)


def count(raw: bytes) -> int:
    """How many chunks a blob field's value stands for; 0 for a value stored whole."""
    return int(raw[1:]) if raw[:1] == _NUL else 0


def field(blob_field: str | bytes, index: int) -> bytes:
    """Hash field of chunk `index` of `blob_field`: ``<channel>\\x1f<version>\\x1f<index>``."""
    head = blob_field.encode() if isinstance(blob_field, str) else blob_field
    return b"%s%s%d" % (head, _US, index)


def split(blob_field: str, packed: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The value for the blob field itself, and the (chunk field, bytes) pairs beside it."""
    if len(packed) <= CHUNK_BYTES:
        return packed, []
    parts = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)]
    return marker(len(parts)), [(field(blob_field, i), part) for i, part in enumerate(parts)]


def plan_join_values(blobs_key: str, found: Sequence[tuple[list[Any], int, bytes]]) -> Plan[None]:
    """Replace each marker ``values[i]`` (of blob field `ref`) by its value, read chunk by chunk.

    A value whose chunks are gone (expired or deleted meanwhile) becomes None,
    as if the blob field were missing.
    """
    wanted = [(values, i, ref, count(values[i])) for values, i, ref in found]
    wanted = [item for item in wanted if item[3]]
    if not wanted:
        return
    replies = yield Run(
        [("HGET", blobs_key, field(ref, j)) for _, _, ref, n in wanted for j in range(n)]
    )
    position = 0
    for values, i, _ref, n in wanted:
        parts = replies[position : position + n]
        position += n
        values[i] = None if any(part is None for part in parts) else b"".join(parts)


def plan_join(blobs_key: str, entries: Sequence[Any]) -> Plan[None]:
    """Join the chunked values in get.lua's reply (``[id, hash, values]`` entries), in place."""
    found: list[tuple[list[Any], int, bytes]] = []
    for entry in entries:
        refs = pairs(entry[1]).get(b"b") or b""
        values = entry[2]
        if refs:
            for i, ref in enumerate(refs.split(_RS)):
                if values[i] is not None:
                    found.append((values, i, ref))
    yield from plan_join_values(blobs_key, found)
