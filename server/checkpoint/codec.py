"""Bytes in Redis <-> LangGraph values, with no I/O.

Every value (checkpoint, metadata, channel value, pending write) goes through
the saver's own LangGraph serializer (`serde.dumps_typed`), so anything LangGraph
can checkpoint round-trips, including messages, interrupts and errors. This
module only frames what serde returns:

* a typed value is ``<type>\\x00<bytes>`` (serde type names never hold NUL);
* a pending write is the hash field ``w:<task_id>:<idx>`` with the value
  ``<channel>\\x00<task_path>\\x00<type>\\x00<bytes>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from cimhub.server.checkpoint.layout import RECORD_SEPARATOR, UNIT_SEPARATOR, decode_ns

WRITE_FIELD_PREFIX = b"w:"
_NUL = b"\x00"
_US = UNIT_SEPARATOR.encode()
_RS = RECORD_SEPARATOR.encode()
_FORBIDDEN = ("\x00", UNIT_SEPARATOR, RECORD_SEPARATOR)


def check_name(kind: str, name: str) -> str:
    """Refuse a channel, task or namespace name that would make a stored field ambiguous."""
    if any(sep in name for sep in _FORBIDDEN):
        raise ValueError(f"{kind} must not contain the control characters \\x00, \\x1e or \\x1f: {name!r}")
    return name


def pack_typed(typed: tuple[str, bytes]) -> bytes:
    type_, data = typed
    return type_.encode() + _NUL + data


def unpack_typed(raw: bytes) -> tuple[str, bytes]:
    type_, _, data = raw.partition(_NUL)
    return type_.decode(), data


def blob_field(channel: str, version: str | float) -> str:
    """Hash field of one channel version in the namespace's blobs hash."""
    return f"{check_name('channel name', channel)}{UNIT_SEPARATOR}{version}"


def blob_refs(channel_versions: Mapping[str, str | int | float]) -> str:
    """The "b" field: every blob field the checkpoint reads, so one script loads it whole."""
    return RECORD_SEPARATOR.join(blob_field(ch, v) for ch, v in channel_versions.items())


def encode_checkpoint(serde: SerializerProtocol, checkpoint: Checkpoint) -> bytes:
    """The checkpoint without channel_values (those are stored once per version)."""
    stored = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    return pack_typed(serde.dumps_typed(stored))


def encode_write(
    serde: SerializerProtocol, task_id: str, task_path: str, idx: int, channel: str, value: Any
) -> tuple[bytes, bytes]:
    """Field and value of one pending write."""
    check_name("task id", task_id)
    field = b"%s%s:%d" % (WRITE_FIELD_PREFIX, task_id.encode(), idx)
    head = _NUL.join((check_name("channel name", channel).encode(), check_name("task path", task_path).encode()))
    return field, head + _NUL + pack_typed(serde.dumps_typed(value))


def write_index(channel: str, position: int) -> int:
    """Index of a write: its position, or the fixed negative slot of a special write (error, interrupt...)."""
    return WRITES_IDX_MAP.get(channel, position)


def decode_writes(serde: SerializerProtocol, fields: Mapping[bytes, bytes | None]) -> list[PendingWrite]:
    """The pending writes among a checkpoint hash's fields, in `writes_sort_key` order."""
    keyed: list[tuple[tuple[str, str, int], PendingWrite]] = []
    for field, raw in fields.items():
        if not field.startswith(WRITE_FIELD_PREFIX) or raw is None:
            continue  # not a write, or a chunked write whose chunks are gone
        task_b, _, idx_b = field[len(WRITE_FIELD_PREFIX) :].rpartition(b":")
        channel_b, task_path_b, typed = raw.split(_NUL, 2)
        task_id = task_b.decode()
        value = serde.loads_typed(unpack_typed(typed))
        keyed.append(
            (
                writes_sort_key(task_path_b.decode(), task_id, int(idx_b)),
                (task_id, channel_b.decode(), value),
            )
        )
    keyed.sort(key=lambda item: item[0])
    return [write for _, write in keyed]


def pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    """A flat [field, value, ...] reply (HGETALL inside Lua) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def config_of(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def decode_metadata(serde: SerializerProtocol, raw: bytes) -> CheckpointMetadata:
    metadata: CheckpointMetadata = serde.loads_typed(unpack_typed(raw))
    return metadata


def decode_tuple(serde: SerializerProtocol, thread_id: str, ns: str, entry: Sequence[Any]) -> CheckpointTuple:
    """One entry of checkpoint_get.lua's reply as a CheckpointTuple.

    `ns` is the encoded namespace; `entry` is ``[id, hash as flat list, blob values]``.
    """
    raw_id, flat, values = entry
    checkpoint_id = raw_id.decode()
    fields = pairs(flat)
    checkpoint: Checkpoint = serde.loads_typed(unpack_typed(fields[b"c"]))
    channel_values: dict[str, Any] = {}
    refs = fields[b"b"]
    if refs:
        for ref, raw in zip(refs.split(_RS), values, strict=True):
            if raw is not None:
                channel_values[ref.partition(_US)[0].decode()] = serde.loads_typed(unpack_typed(raw))
    checkpoint["channel_values"] = channel_values
    checkpoint_ns = decode_ns(ns)
    parent = fields[b"p"].decode()
    return CheckpointTuple(
        config=config_of(thread_id, checkpoint_ns, checkpoint_id),
        checkpoint=checkpoint,
        metadata=decode_metadata(serde, fields[b"m"]),
        parent_config=config_of(thread_id, checkpoint_ns, parent) if parent else None,
        pending_writes=decode_writes(serde, fields),
    )


def _canonical(value: Any) -> bytes:
    """JSON text of a metadata value: nested dicts compare regardless of key order, tuples as lists."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """True when every filter key is in `metadata` with an equal value, compared as JSON.

    Any metadata key can be filtered on, including custom ones; nested values
    (dicts, lists) must be equal as JSON, so {"a": {"x": 1, "y": 2}} matches
    whatever order the keys were stored in, and True does not match 1.
    """
    if not filter:
        return True
    for key, expected in filter.items():
        if key not in metadata:
            return False
        actual = metadata[key]
        if actual is expected or (type(actual) is type(expected) and actual == expected):
            continue
        if _is_number(actual) and _is_number(expected) and actual == expected:
            continue  # 1 == 1.0, as in JSON; but True is not a number here
        if _canonical(actual) != _canonical(expected):
            return False
    return True


def as_text(values: Iterable[bytes | str]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in values]
