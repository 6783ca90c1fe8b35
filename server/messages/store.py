"""Conversation messages of a CIM: storage, live stream, cursor pagination, exact vector search.

The seed keeps them in a `messages` table with a pgvector index filtered by CIM;
here they live beside the CIM in Redis, in a fixed set of keys per CIM (all in
the CIM's hash slot, so one Lua script changes them together)::

    <prefix>:cim:{<id>}:msg:meta   hash    seq (last seq), commit (its id), rows (vector rows), dim, gen
    <prefix>:cim:{<id>}:msg:body   hash    seq -> {"seq","row","commit","parent","message"} (no embedding)
    <prefix>:cim:{<id>}:msg:ids    hash    message id -> seq (idempotent retries)
    <prefix>:cim:{<id>}:msg:vec    string  float32 rows, appended with APPEND
    <prefix>:cim:{<id>}:msg:rows   string  9 bytes per row: seq, role, norm
    <prefix>:ch:msg:{<id>}         sharded channel: each appended message, as JSON

Guarantees:

* `add` is atomic (lua/add.lua): the CIM must exist at that moment, the
  message gets the next seq (1, 2, 3, ..., contiguous per CIM), and body, id,
  vector row and the PUBLISH on the live topic happen together or not at all.
* The live topic is at most once, like all pub/sub. A subscriber that missed
  messages (reconnect, slow consumer) calls `read_since(last_seq_seen)`: seqs are
  contiguous, so a gap is visible and fully repairable. Each event carries the
  epoch of the CIM hash at publish time, so a subscriber can tell a recreated
  CIM (seqs restart at 1) from a gap.
* Every message has a commit id, never repeated, and names its parent (the
  commit id of the message before it), like a CIM commit: after Redis came
  back older (a restore, a lagging replica) the same seq may name another
  message, and only the ids tell the two histories apart. A subscriber
  resumes from the commit id it holds (cimhub.server.messages.feed).
* A page is one Lua step: bodies (and embeddings) of one consistent snapshot.
  A search scores one consistent snapshot of all rows (one Lua step, or one
  MULTI when the cache is cold) and checks the bodies it then reads against the
  generation it scored, retrying if the messages were deleted and rewritten.
* Search is exact: every vector of the CIM is scored (see messages_vectors.py),
  however the per-process cache is doing; the cache only saves transfer.
* `delete_all` (or the CIM store deleting `key_names`) removes everything; a
  new generation token then invalidates every process's vector cache.
* Reads of a CIM that has no messages, or does not exist, are empty: whether
  the CIM exists and who may read it is for the CIM store and the hub.

Redis error classes are not caught here: a connection failure surfaces as a
`redis.RedisError`, which the hub turns into `Unavailable`.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import orjson
import redis.asyncio as aioredis
from pydantic import TypeAdapter, ValidationError

from cimhub.protocol.errors import (
    Conflict,
    ErrorCode,
    InvalidInput,
    NotFound,
    Unavailable,
    from_validation_error,
)
from cimhub.protocol.schema import Id, Message, MessageRole
from cimhub.server.lua import load_script
from cimhub.server.messages.reader import READ_ATTEMPTS, VectorReader
from cimhub.server.messages.vectors import ROLE_CODES, check_vector
from cimhub.server.store.cims import new_commit_id
from cimhub.server.store.keys import Keys

Order = Literal["newest", "oldest"]
Vector = Sequence[float] | np.ndarray

MAX_PAGE = 200
"""Largest page of `list` and `read_since`."""
MAX_K = 100
"""Largest k of `search`."""
MAX_VECTOR_ROWS = 100_000
"""Embedded messages per CIM: 400 MB at 1,024 dimensions, under Redis's 512 MB string limit."""
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
"""Vector cache per process: six CIMs of 10,000 messages at 1,024 dimensions."""

_ID = TypeAdapter(Id)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message with its per-CIM sequence number (1, 2, 3, ...)."""

    seq: int
    message: Message
    commit: str = ""
    """This message's commit id ("" for a message stored before messages had them)."""
    parent: str = ""
    """The commit id of the message before it ("" for the first, or for one stored before commit ids)."""


@dataclass(frozen=True, slots=True)
class AddedMessage(StoredMessage):
    """What `MessageStore.add` returns: `duplicate` is True when the id was already stored."""

    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of `MessageStore.list`.

    `next_cursor` continues in the same order. Newest-first it is None once seq 1
    was returned; oldest-first it is always set, so a caller can come back later
    for messages appended since. `has_more` says whether the next page had
    messages when this one was read.
    """

    messages: list[StoredMessage]
    next_cursor: str | None
    has_more: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    seq: int
    score: float
    """Cosine similarity in [-1, 1], computed in float32 (about 1e-6 accurate)."""
    message: Message


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One message as published on the live topic `MessageStore.channel(cim_id)`."""

    seq: int
    epoch: str
    message: Message
    commit: str = ""
    parent: str = ""


class EmbeddingProvider(Protocol):
    """Computes embeddings for texts (e.g. Voyage 3.5). Optional: callers may pass vectors instead."""

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]: ...


def encode_cursor(order: Order, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{order[0]}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> int:
    """The seq a cursor stands for; InvalidInput when malformed or made for the other order."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, number = text.partition(":")
        seq = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor returned by a message list", path="cursor") from None
    if tag != order[0] or seq < 0:
        raise InvalidInput(f"cursor: made for another order than {order!r}", path="cursor")
    return seq


def parse_event(data: bytes | str) -> MessageEvent:
    """Decode one payload received on the live topic."""
    raw = orjson.loads(data)
    return MessageEvent(
        seq=int(raw["seq"]),
        epoch=str(raw["epoch"]),
        message=Message.model_validate(raw["message"]),
        commit=str(raw.get("commit") or ""),
        parent=str(raw.get("parent") or ""),
    )


class MessageStore:
    """Messages of every CIM under one key prefix. One per process and event loop; safe for concurrent tasks.

    `redis` must return bytes (``decode_responses=False``): vectors are binary.
    `dimension` is checked on every write and query, and against what a CIM
    already stores. `cache_bytes` bounds the per-process vector cache (0 turns it
    off; results are the same either way, only slower).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        dimension: int = 1024,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        embedder: EmbeddingProvider | None = None,
        max_vector_rows: int = MAX_VECTOR_ROWS,
    ) -> None:
        if redis.get_encoder().decode_responses:  # type: ignore[no-untyped-call]  # untyped in redis-py
            raise ValueError("MessageStore needs a Redis client with decode_responses=False: vectors are binary")
        if not 1 <= dimension <= 65_536:
            raise ValueError(f"dimension must be in 1..65536, got {dimension}")
        if embedder is not None and embedder.dimension != dimension:
            raise ValueError(f"embedder makes {embedder.dimension}-dimension vectors, the store expects {dimension}")
        self.redis = redis
        self.keys = keys
        self.dimension = dimension
        self.embedder = embedder
        self.max_vector_rows = max_vector_rows
        self.reader = VectorReader(redis, dimension, cache_bytes)
        self.cache = self.reader.cache
        self._add_script = load_script(redis, "cimhub.server.messages", "add")
        self._page_script = load_script(redis, "cimhub.server.messages", "page")

    # -- names ------------------------------------------------------------

    def key_names(self, cim_id: str) -> list[str]:
        """Every key the messages of `cim_id` may use (a fixed set), for the CIM store's delete script."""
        return list(self.keys.messages(cim_id))

    def channel(self, cim_id: str) -> str:
        """Sharded channel of the messages appended to `cim_id` (payloads: see `parse_event`)."""
        return self.keys.message_channel(cim_id)

    # -- writes -----------------------------------------------------------

    async def add(
        self,
        cim_id: str,
        role: MessageRole,
        content: str,
        *,
        timestamp: int | None = None,
        embedding: Vector | None = None,
        message_id: str | None = None,
    ) -> AddedMessage:
        """Append a message to the CIM's conversation and publish it on `channel(cim_id)`.

        Atomic (see the module docstring). Raises NotFound when the CIM does not
        exist, InvalidInput (with `path`) for bad fields. Sending the same
        `message_id` again returns the stored message with `duplicate=True` and
        adds nothing, so a caller that lost the reply retries with the same id;
        the same id with a different role or content is a Conflict. `timestamp` is milliseconds
        since the epoch (default: now). With no `embedding` and an `embedder`,
        the embedding is computed. Embeddings are stored as float32; the
        returned message leaves the embedding out (read it with `list`).
        """
        _check_id(cim_id, "cimId")
        if message_id is not None:
            _check_id(message_id, "id")
        if not isinstance(content, str) or not content:
            raise InvalidInput("content: must be a non-empty string", path="content")
        if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0):
            raise InvalidInput(f"timestamp: expected milliseconds >= 0, got {timestamp!r}", path="timestamp")
        try:
            message = Message.model_validate(
                {
                    "id": message_id or uuid.uuid4().hex,
                    "cimId": cim_id,
                    "role": role,
                    "content": content,
                    "timestamp": int(time.time() * 1000) if timestamp is None else timestamp,
                }
            )
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        if embedding is None and self.embedder is not None:
            embedding = (await self.embedder.embed([content]))[0]
        vector_bytes = norm_bytes = b""
        if embedding is not None:
            vector, norm = check_vector(embedding, self.dimension, "embedding")
            vector_bytes, norm_bytes = vector.tobytes(), np.float32(norm).astype("<f4").tobytes()

        keys = [self.keys.cim(cim_id), *self.key_names(cim_id)]
        args: list[str | bytes | int] = [
            message.id,
            message.model_dump_json(exclude={"embedding"}),
            ROLE_CODES[message.role],
            vector_bytes,
            norm_bytes,
            self.dimension,
            uuid.uuid4().hex,
            self.channel(cim_id),
            self.max_vector_rows,
            new_commit_id(),
        ]
        outcome = await self._add_script(keys=keys, args=args)
        kind = outcome[0].decode()
        if kind == "no_cim":
            raise NotFound(f"CIM {cim_id!r} does not exist", path="cimId")
        if kind == "dimension":
            raise InvalidInput(
                f"embedding: CIM {cim_id!r} stores {int(outcome[1])}-dimension embeddings, "
                f"this server is configured for {self.dimension}",
                path="embedding",
            )
        if kind == "full":
            raise InvalidInput(
                f"embedding: CIM {cim_id!r} already holds {self.max_vector_rows} embedded messages",
                code=ErrorCode.PAYLOAD_TOO_LARGE,
                path="embedding",
            )
        stored = _stored(outcome[2])
        previous = stored.message
        if kind == "exists" and (previous.role, previous.content) != (message.role, message.content):
            raise Conflict(
                f"id: message {message.id!r} already exists with another role or content",
                code=ErrorCode.MUTATION_ID_REUSED,
                path="id",
            )
        return AddedMessage(stored.seq, previous, stored.commit, stored.parent, duplicate=kind == "exists")

    async def delete_all(self, cim_id: str) -> None:
        """Delete every message of the CIM, atomically (one DEL).

        The CIM store's own delete removes `key_names` in its script instead, to
        delete the CIM and its messages in one step. Subscribers get no event;
        the CIM's deletion is announced on the CIM topic.
        """
        _check_id(cim_id, "cimId")
        await self.redis.delete(*self.key_names(cim_id))
        self.cache.drop(cim_id)

    # -- reads ------------------------------------------------------------

    async def latest_seq(self, cim_id: str) -> int:
        """Seq of the newest message, 0 when the CIM has none."""
        _check_id(cim_id, "cimId")
        value = await self.redis.hget(self.keys.messages(cim_id).meta, "seq")
        return int(value) if value is not None else 0

    async def read_since(self, cim_id: str, after_seq: int, limit: int = MAX_PAGE) -> list[StoredMessage]:
        """Messages with seq > `after_seq`, oldest first, at most `limit` (1..200).

        For catch-up after a gap on the live topic: subscribe first, then read
        since the last seq seen, and drop live events whose seq was already read.
        Fewer than `limit` results means the caller is up to date.
        """
        _check_id(cim_id, "cimId")
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise InvalidInput(f"afterSeq: expected an integer >= 0, got {after_seq!r}", path="afterSeq")
        _check_range(limit, 1, MAX_PAGE, "limit")
        _, messages = await self._page(cim_id, "oldest", after_seq, limit, with_vectors=False)
        return messages

    async def search(
        self,
        cim_id: str,
        query: Vector | str,
        *,
        k: int = 10,
        role: MessageRole | None = None,
        include_embeddings: bool = False,
    ) -> list[SearchHit]:
        """The `k` (1..100) messages of the CIM most similar to `query` by cosine, best first.

        Exact and current: every embedded message stored when the search reads
        Redis is scored; messages without an embedding are never returned. Ties
        go to the older message. `role` keeps only that role's messages. A text
        `query` is embedded with the `embedder`.
        """
        _check_id(cim_id, "cimId")
        _check_range(k, 1, MAX_K, "k")
        if role is not None and role not in ROLE_CODES:
            raise InvalidInput(f"role: expected 'user' or 'assistant', got {role!r}", path="role")
        if isinstance(query, str):
            if self.embedder is None:
                raise InvalidInput("query: a text query needs an embedding provider; send a vector", path="query")
            query = (await self.embedder.embed([query]))[0]
        vector, _ = check_vector(query, self.dimension, "query")
        role_code = None if role is None else ROLE_CODES[role]
        names = self.keys.messages(cim_id)
        for _attempt in range(READ_ATTEMPTS):
            vectors, rows = await self.reader.read(cim_id, names)
            ranked = vectors.top_k(vector, k, rows=rows, role=role_code)
            if not ranked:
                return []
            bodies = await self.reader.bodies(names, vectors, [int(vectors.seqs[row]) for row, _ in ranked])
            if bodies is None:
                continue  # deleted and rewritten since the vectors were read
            hits = []
            for (row, score), body in zip(ranked, bodies, strict=True):
                stored = _stored(body)
                message = stored.message
                if include_embeddings:
                    message = message.model_copy(update={"embedding": vectors.vectors[row].tolist()})
                hits.append(SearchHit(stored.seq, score, message))
            return hits
        raise Unavailable(f"messages of CIM {cim_id!r} were deleted and rewritten during every search attempt")

    async def list(
        self,
        cim_id: str,
        *,
        order: Order = "newest",
        limit: int = 50,
        cursor: str | None = None,
        include_embeddings: bool = False,
    ) -> MessagePage:
        """One page of the conversation, newest-first or oldest-first, `limit` in 1..200.

        Pass `next_cursor` back to continue. Cursors stay valid while messages
        are appended: newest-first never repeats or skips (new messages appear
        only on a fresh first page), oldest-first continues into new messages.
        """
        _check_id(cim_id, "cimId")
        if order not in ("newest", "oldest"):
            raise InvalidInput(f"order: expected 'newest' or 'oldest', got {order!r}", path="order")
        _check_range(limit, 1, MAX_PAGE, "limit")
        bound = 0 if cursor is None else decode_cursor(cursor, order)
        last, messages = await self._page(cim_id, order, bound, limit, with_vectors=include_embeddings)
        if order == "newest":
            if not messages or messages[-1].seq == 1:
                return MessagePage(messages, None, False)
            return MessagePage(messages, encode_cursor(order, messages[-1].seq), True)
        high = messages[-1].seq if messages else bound
        return MessagePage(messages, encode_cursor(order, high), high < last)

    # -- internals ----------------------------------------------------------

    async def _page(
        self, cim_id: str, order: Order, bound: int, limit: int, *, with_vectors: bool
    ) -> tuple[int, builtins.list[StoredMessage]]:
        names = self.keys.messages(cim_id)
        row_bytes = self.dimension * 4 if with_vectors else 0
        last, stored_dim, bodies, vectors = await self._page_script(
            keys=[names.meta, names.body, names.vec],
            args=["asc" if order == "oldest" else "desc", bound, limit, row_bytes],
        )
        if with_vectors and stored_dim and int(stored_dim) != self.dimension:
            raise InvalidInput(
                f"CIM {cim_id!r} stores {int(stored_dim)}-dimension embeddings, "
                f"this server is configured for {self.dimension}",
                path="embedding",
            )
        messages = [_stored(body) for body in bodies]
        if with_vectors:
            messages = [
                replace(m, message=m.message.model_copy(update={"embedding": _floats(raw)})) if raw else m
                for m, raw in zip(messages, vectors, strict=True)
            ]
        return int(last), messages


def _stored(body: bytes) -> StoredMessage:
    raw: dict[str, Any] = orjson.loads(body)
    return StoredMessage(
        seq=int(raw["seq"]),
        message=Message.model_validate(raw["message"]),
        commit=str(raw.get("commit") or ""),
        parent=str(raw.get("parent") or ""),
    )


def _floats(raw: bytes) -> list[float]:
    values: list[float] = np.frombuffer(raw, dtype="<f4").tolist()
    return values


def _check_id(value: str, path: str) -> None:
    try:
        _ID.validate_python(value)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix=path) from None


def _check_range(value: int, low: int, high: int, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{path}: expected an integer in {low}..{high}, got {value!r}", path=path)
