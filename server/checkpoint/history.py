"""get_delta_channel_history as a plan: the parent chain walked in Redis, a bounded stretch per call.

LangGraph's default walks the chain with one get_tuple per ancestor, one round
trip each. Here delta_history.lua walks it server-side and returns only the
writes to the channels asked for and their seeds, so a history of N steps costs
about N / HISTORY_VISITS round trips. Each call stops after HISTORY_VISITS
ancestors or HISTORY_BYTES of values, so one call never holds Redis long.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite
from langgraph.checkpoint.serde.base import SerializerProtocol

from cimhub.server.checkpoint import chunks
from cimhub.server.checkpoint.codec import check_name, decode_writes, pairs, unpack_typed
from cimhub.server.checkpoint.layout import UNIT_SEPARATOR, CheckpointKeys
from cimhub.server.checkpoint.scripts import SCRIPTS
from cimhub.server.checkpoint.steps import Plan, Run

_US = UNIT_SEPARATOR.encode()

# Ancestors one script call visits at most.
HISTORY_VISITS = 256
# Bytes of writes and seeds after which one script call returns (at least one ancestor each).
HISTORY_BYTES = 1 << 20


def plan_delta_history(
    keys: CheckpointKeys,
    serde: SerializerProtocol,
    thread_id: str,
    ns: str,
    checkpoint_id: str,
    channels: Sequence[str],
) -> Plan[dict[str, DeltaChannelHistory]]:
    """Per channel: its writes along the chain above the checkpoint, oldest first, and its seed.

    Same contract as `BaseCheckpointSaver.get_delta_channel_history`: the walk
    starts at the parent of the checkpoint (`checkpoint_id`, or the newest of
    the namespace when ""), so the checkpoint's own pending writes are left
    out; a channel's walk ends at the nearest ancestor storing its value (the
    seed), whose writes are included; within one checkpoint writes come in
    `writes_sort_key` order. A channel with no stored value on the chain has
    no "seed".
    """
    wanted = [check_name("channel name", channel) for channel in dict.fromkeys(channels)]
    if not wanted:
        return {}
    tk = keys.thread(thread_id)
    open_channels = list(wanted)
    chain: list[list[PendingWrite]] = []  # each ancestor's writes, newest ancestor first
    seeds: dict[str, Any] = {}
    cursor, first = checkpoint_id, True
    while open_channels:
        (reply,) = yield Run(
            [
                SCRIPTS.delta_history.call(
                    [tk.namespaces, tk.blobs(ns), tk.ids(ns)],
                    [
                        tk.checkpoint_prefix(ns),
                        ns,
                        cursor,
                        "1" if first else "0",
                        HISTORY_VISITS,
                        HISTORY_BYTES,
                        *open_channels,
                    ],
                )
            ]
        )
        resume, entries = reply
        yield from chunks.plan_join_history(tk.blobs(ns), tk.checkpoint_prefix(ns), entries)
        for _id, flat_writes, flat_seeds in entries:
            chain.append(decode_writes(serde, pairs(flat_writes)))
            for ref, raw in pairs(flat_seeds).items():
                if raw is not None:
                    seeds[ref.partition(_US)[0].decode()] = serde.loads_typed(unpack_typed(raw))
        open_channels = [channel for channel in open_channels if channel not in seeds]
        if not resume:
            break
        cursor, first = resume.decode(), False
    history: dict[str, DeltaChannelHistory] = {channel: {"writes": []} for channel in wanted}
    for writes in reversed(chain):
        for write in writes:
            history[write[1]]["writes"].append(write)
    for channel, seed in seeds.items():
        history[channel]["seed"] = seed
    result: dict[str, DeltaChannelHistory] = {}
    for channel in channels:  # every name asked for, duplicates included, as the default does
        result[channel] = history[channel]
    return result
