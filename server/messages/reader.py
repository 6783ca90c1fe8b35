"""Reading one CIM's vector rows from Redis into the per-process cache, for exact search.

`MessageStore.search` scores with `VectorSet.top_k` (messages_vectors.py, no
I/O); this module keeps the set it scores up to date and reads the bodies of
the hits. Measured choices (docs/messages.md):

* Rows are append-only within a generation, so a cached set only needs the rows
  it lacks: one Lua call returns them (usually none or one) with the row count
  and generation, as one consistent snapshot.
* A cold cache (tens of MB) is filled with plain GETRANGEs of `CHUNK_BYTES` in a
  MULTI instead: a large Lua reply is copied several times inside Redis, and
  redis-py parses 1 MiB replies faster than one 40 MB reply.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from cimhub.protocol.errors import InvalidInput, Unavailable
from cimhub.server.lua import load_script
from cimhub.server.messages.vectors import ROW_DTYPE, VectorCache, VectorSet
from cimhub.server.store.keys import MessageKeys

CHUNK_BYTES = 1024 * 1024
"""Largest vector reply; a cold cache is filled with GETRANGEs of this size."""
READ_ATTEMPTS = 3
"""Reads retried when a CIM's messages are deleted and rewritten while being read."""


class VectorReader:
    """Keeps `VectorSet`s current with Redis; one per `MessageStore`."""

    def __init__(self, redis: aioredis.Redis, dimension: int, cache_bytes: int) -> None:
        self.redis = redis
        self.dimension = dimension
        self.cache = VectorCache(cache_bytes)
        self._script = load_script(redis, "cimhub.server.messages", "vectors")

    async def read(self, cim_id: str, names: MessageKeys) -> tuple[VectorSet, int]:
        """An up-to-date `VectorSet` of the CIM and its row count when Redis was read.

        The set may hold more rows than that count (another search read later);
        score only the first `count` rows. InvalidInput when the CIM's vectors
        have another dimension than this server's.
        """
        row_size = self.dimension * 4
        for _attempt in range(READ_ATTEMPTS):
            cached = self.cache.get(cim_id)
            known_gen, known_rows = (cached.gen, cached.count) if cached else ("", 0)
            reply = await self._script(
                keys=[names.meta, names.vec, names.rows],
                args=[known_gen, known_rows, ROW_DTYPE.itemsize, CHUNK_BYTES],
            )
            gen, dim, rows, start = reply[0].decode(), int(reply[1]), int(reply[2]), int(reply[3])
            if rows == 0:
                return VectorSet(gen, self.dimension), 0
            if dim != self.dimension:
                raise InvalidInput(
                    f"query: CIM {cim_id!r} stores {dim}-dimension embeddings, "
                    f"this server is configured for {self.dimension}",
                    path="query",
                )
            if len(reply) == 6:
                pieces = [(reply[4], reply[5])]
            else:
                read = await self._read_rows(names, gen, start, rows)
                if read is None:
                    continue  # deleted and rewritten while reading: start over
                pieces = read
            # Another search may have replaced or extended the cached set while
            # this one awaited Redis. Rows already held are identical, so only
            # what lies past them is appended.
            current = self.cache.get(cim_id)
            if current is None or current.gen != gen or current.count < start:
                if start != 0:
                    self.cache.drop(cim_id)
                    continue  # this suffix fits nothing held any more: read everything
                current = VectorSet(gen, self.dimension)
            position = start
            for vector_bytes, row_bytes in pieces:
                count = len(row_bytes) // ROW_DTYPE.itemsize
                skip = current.count - position
                if skip < count:
                    current.extend(vector_bytes[skip * row_size :], row_bytes[skip * ROW_DTYPE.itemsize :])
                position += count
            self.cache.put(cim_id, current)
            return current, rows
        raise Unavailable(f"messages of CIM {cim_id!r} were deleted and rewritten during every read")

    async def bodies(self, names: MessageKeys, vectors: VectorSet, seqs: list[int]) -> list[bytes] | None:
        """Stored bodies of `seqs`; None when the messages are no longer those `vectors` scored."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(names.meta, "gen")
            pipe.hmget(names.body, seqs)
            gen, bodies = await pipe.execute()
        if gen is None or gen.decode() != vectors.gen or any(body is None for body in bodies):
            return None
        return list(bodies)

    async def _read_rows(self, names: MessageKeys, gen: str, start: int, rows: int) -> list[tuple[bytes, bytes]] | None:
        """Rows start..rows-1 as (vectors, records) pieces of CHUNK_BYTES; None if `gen` is gone.

        One MULTI, so the gen read with the rows proves they belong to it.
        """
        row_size, record = self.dimension * 4, ROW_DTYPE.itemsize
        per_chunk = max(1, CHUNK_BYTES // row_size)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(names.meta, "gen")
            for first in range(start, rows, per_chunk):
                last = min(rows, first + per_chunk)
                pipe.getrange(names.vec, first * row_size, last * row_size - 1)
                pipe.getrange(names.rows, first * record, last * record - 1)
            replies = await pipe.execute()
        if replies[0] is None or replies[0].decode() != gen:
            return None
        return list(zip(replies[1::2], replies[2::2], strict=True))
