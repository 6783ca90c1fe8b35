"""Large channel values in pieces, so that no single Redis command holds the server for long.

A Lua script copies its arguments in and its reply out, and Redis runs
nothing else meanwhile: a 5 MB channel value in one script call held Redis
for 20-200 ms on the test machine (bench/bench_checkpoint_production.py). So
a value over CHUNK_BYTES goes into its field as a small marker, and its bytes
into chunk fields of the same hash beside it, each written by a plain HSET
sent before the script and read by a plain HGET after it, one command per
chunk. Channel values: chunks ``<channel>\x1f<version>\x1f<i>`` in the
blobs hash, kept by collect_blobs (common.lua) exactly as long as their
field. Pending writes: chunks ``x:<task>:<idx>\x1f<i>`` in the checkpoint's
own hash, which the scripts never read (read_checkpoint in common.lua).
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


def write_field(field: bytes, index: int) -> bytes:
    """Hash field of chunk `index` of pending write `field` (``w:<task>:<idx>``): ``x:<task>:<idx>\x1f<i>``.

    Not "w:": readers that scan the hash for writes never see a chunk.
    """
    return b"x%s%s%d" % (field[1:], _US, index)


def split_write(field: bytes, encoded: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Like `split` for a pending write ``<channel>\0<task path>\0<typed value>``.

    The stored value keeps its channel and task path (the scripts filter on
    the channel), with a marker for the typed value.
    """
    channel, task_path, typed = encoded.split(_NUL, 2)
    if len(typed) <= CHUNK_BYTES:
        return encoded, []
    parts = [typed[i : i + CHUNK_BYTES] for i in range(0, len(typed), CHUNK_BYTES)]
    head = _NUL.join((channel, task_path, marker(len(parts))))
    return head, [(write_field(field, i), part) for i, part in enumerate(parts)]


class _Fill:
    """One chunked value to read back: where its chunks are and where the value goes."""

    __slots__ = ("fields", "head", "index", "key", "target")

    def __init__(self, key: str, fields: list[bytes], target: list[Any], index: int, head: bytes) -> None:
        self.key, self.fields, self.target, self.index, self.head = (
            key,
            fields,
            target,
            index,
            head,
        )


def _plan_fill(fills: list[_Fill]) -> Plan[None]:
    """Read every chunk with its own HGET, in one round trip, and put the joined values in place.

    A value whose chunks are gone (expired or deleted meanwhile) becomes None,
    as if it were missing.
    """
    if not fills:
        return
    replies = yield Run([("HGET", fill.key, name) for fill in fills for name in fill.fields])
    position = 0
    for fill in fills:
        parts = replies[position : position + len(fill.fields)]
        position += len(fill.fields)
        missing = any(part is None for part in parts)
        fill.target[fill.index] = None if missing else fill.head + b"".join(parts)


def _write_fills(key: str, flat: list[Any]) -> list[_Fill]:
    fills: list[_Fill] = []
    for i in range(0, len(flat), 2):
        name, raw = flat[i], flat[i + 1]
        if not name.startswith(b"w:") or raw is None:
            continue
        channel, task_path, typed = raw.split(_NUL, 2)
        if n := count(typed):
            head = _NUL.join((channel, task_path, b""))
            fills.append(_Fill(key, [write_field(name, j) for j in range(n)], flat, i + 1, head))
    return fills


def plan_join(blobs_key: str, checkpoint_prefix: str, entries: Sequence[Any]) -> Plan[None]:
    """Join the chunked values and writes in get.lua's reply (``[id, hash, values]``), in place."""
    fills: list[_Fill] = []
    for entry in entries:
        refs = pairs(entry[1]).get(b"b") or b""
        values = entry[2]
        if refs:
            for i, ref in enumerate(refs.split(_RS)):
                if values[i] is not None and (n := count(values[i])):
                    fills.append(_Fill(blobs_key, [field(ref, j) for j in range(n)], values, i, b""))
        fills += _write_fills(checkpoint_prefix + entry[0].decode(), entry[1])
    yield from _plan_fill(fills)


def plan_join_history(blobs_key: str, checkpoint_prefix: str, entries: Sequence[Any]) -> Plan[None]:
    """Join the chunked writes and seeds in delta_history.lua's reply, in place."""
    fills: list[_Fill] = []
    for raw_id, writes, seeds in entries:
        fills += _write_fills(checkpoint_prefix + raw_id.decode(), writes)
        for i in range(1, len(seeds), 2):
            if seeds[i] is not None and (n := count(seeds[i])):
                ref = seeds[i - 1]
                fills.append(_Fill(blobs_key, [field(ref, j) for j in range(n)], seeds, i, b""))
    yield from _plan_fill(fills)
