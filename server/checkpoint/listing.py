"""The list plan: checkpoints newest first, across namespaces and threads, a page at a time."""

from __future__ import annotations

from collections import deque
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import get_checkpoint_id
from langgraph.checkpoint.serde.base import SerializerProtocol

from cimhub.server.checkpoint import chunks
from cimhub.server.checkpoint.codec import as_text, decode_metadata, decode_tuple, metadata_matches
from cimhub.server.checkpoint.layout import CheckpointKeys, check_thread_id, encode_ns
from cimhub.server.checkpoint.scripts import SCRIPTS
from cimhub.server.checkpoint.steps import Emit, Plan, Run

# Checkpoints read per round trip; ids are fetched in pages of the same size.
PAGE = 64


class Listing:
    """One list() call: the filter, and how many checkpoints are still to be emitted."""

    def __init__(
        self,
        keys: CheckpointKeys,
        serde: SerializerProtocol,
        filter: dict[str, Any] | None,
        limit: int | None,
    ) -> None:
        self.keys = keys
        self.serde = serde
        self.filter = filter
        self.left = limit

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0

    def plan(self, config: RunnableConfig | None, before: RunnableConfig | None) -> Plan[None]:
        """Checkpoints newest first (by id, which is uuid6 time order), thread by thread.

        `config` None lists every thread in the registry; a config without
        checkpoint_ns lists every namespace of its thread, merged by id; a
        config with checkpoint_id lists that checkpoint only. `before` is
        exclusive and compared as a string, like the ids' own order. Ids are
        read from the sorted index a page at a time, so `limit` and `before`
        cost what they return, not the thread's length (a filter reads the
        metadata of each candidate, but loads only the checkpoints it keeps).
        """
        if self.done:
            return
        if config is None:
            (members,) = yield Run([("SMEMBERS", self.keys.threads())])
            threads = sorted(as_text(members))
            configurable: dict[str, Any] = {}
        else:
            configurable = config["configurable"]
            threads = [check_thread_id(configurable["thread_id"])]
        wanted_ns = configurable.get("checkpoint_ns")
        wanted_id = configurable.get("checkpoint_id")
        before_id = get_checkpoint_id(before) if before else None
        for thread_id in threads:
            if wanted_ns is not None:
                namespaces = [encode_ns(wanted_ns)]
            else:
                (members,) = yield Run([("SMEMBERS", self.keys.thread(thread_id).namespaces)])
                namespaces = sorted(as_text(members))
            if wanted_id is None:
                yield from self._merge(thread_id, namespaces, before_id)
            elif before_id is None or wanted_id < before_id:
                yield from self._page(thread_id, [(wanted_id, ns) for ns in namespaces])
            if self.done:
                return

    def _merge(self, thread_id: str, namespaces: list[str], before_id: str | None) -> Plan[None]:
        """Walk each namespace's id index newest first, PAGE ids at a time, merged by id."""
        tk = self.keys.thread(thread_id)
        upper = {ns: f"({before_id}" if before_id else "+" for ns in namespaces}
        buffers: dict[str, deque[str]] = {ns: deque() for ns in namespaces}
        unread = set(namespaces)
        while True:
            empty = [ns for ns in namespaces if ns in unread and not buffers[ns]]
            if empty:
                replies = yield Run([("ZREVRANGEBYLEX", tk.ids(ns), upper[ns], "-", "LIMIT", 0, PAGE) for ns in empty])
                for ns, reply in zip(empty, replies, strict=True):
                    ids = as_text(reply)
                    buffers[ns].extend(ids)
                    if len(ids) < PAGE:
                        unread.discard(ns)
                    if ids:
                        upper[ns] = f"({ids[-1]}"
            page: list[tuple[str, str]] = []
            while len(page) < PAGE:
                if any(ns in unread and not buffers[ns] for ns in namespaces):
                    break  # refill first, or the merge could skip a newer id
                heads = [ns for ns in namespaces if buffers[ns]]
                if not heads:
                    break
                ns = max(heads, key=lambda n: buffers[n][0])
                page.append((buffers[ns].popleft(), ns))
            if not page:
                return
            yield from self._page(thread_id, page)
            if self.done:
                return

    def _page(self, thread_id: str, page: list[tuple[str, str]]) -> Plan[None]:
        """Load one page of (id, ns), drop what the filter rejects, emit the rest in order."""
        tk = self.keys.thread(thread_id)
        if self.filter:
            metadata = yield Run([("HGET", tk.checkpoint(ns, cid), "m") for cid, ns in page])
            page = [
                item
                for item, raw in zip(page, metadata, strict=True)
                if raw is not None and metadata_matches(decode_metadata(self.serde, raw), self.filter)
            ]
        if not page:
            return
        by_ns: dict[str, list[str]] = {}
        for cid, ns in page:
            by_ns.setdefault(ns, []).append(cid)
        order = list(by_ns)
        replies = yield Run(
            [
                SCRIPTS.get.call(
                    [tk.ids(ns), tk.blobs(ns), tk.namespaces],
                    [tk.checkpoint_prefix(ns), ns, *by_ns[ns]],
                )
                for ns in order
            ]
        )
        found: dict[tuple[str, str], Any] = {}
        for ns, reply in zip(order, replies, strict=True):
            yield from chunks.plan_join(tk.blobs(ns), tk.checkpoint_prefix(ns), reply)
            for entry in reply:
                found[(entry[0].decode(), ns)] = entry
        for cid, ns in page:
            entry = found.get((cid, ns))
            if entry is None:
                continue  # expired, or only early writes
            yield Emit(decode_tuple(self.serde, thread_id, ns, entry))
            if self.left is not None:
                self.left -= 1
                if self.done:
                    return
