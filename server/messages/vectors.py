"""Exact cosine top-k over one CIM's message embeddings, with NumPy, and the per-process cache.

No I/O here: `cimhub.server.messages.store` reads rows from Redis and hands the bytes
to a `VectorSet`. Keeping the arithmetic apart lets the tests and the benchmark
run the same search on vectors already in memory (the floor).

Why NumPy rather than a Redis vector index: the Redis cimhub runs on (7.0, no
modules) has none, and one CIM holds at most thousands of messages, where an
exact scan is a single matrix-vector product of a few milliseconds (figures in
docs/messages.md).

Storage format (written by messages_add.lua, read here):

* vectors: row ``i`` is ``dimension`` little-endian float32 values;
* row records: 9 bytes per row, ``<u4 seq, u1 role, f4 norm>`` (`ROW_DTYPE`).
  The norm is stored so a search divides by it instead of recomputing 10,000
  norms, and the role so the role filter is one vectorised comparison.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cimhub.protocol.errors import InvalidInput
from cimhub.protocol.schema import MessageRole

ROW_DTYPE = np.dtype([("seq", "<u4"), ("role", "u1"), ("norm", "<f4")])
ROLE_CODES: dict[MessageRole, int] = {"user": 0, "assistant": 1}

F32 = npt.NDArray[np.float32]


def check_vector(value: Any, dimension: int, path: str) -> tuple[F32, float]:
    """`value` as float32 little-endian, with its norm; InvalidInput (at `path`) when unusable.

    Refused: not a flat sequence of numbers, wrong length, NaN or infinity (also
    after rounding to float32, so 1e39 is refused), and a zero vector, whose
    cosine similarity is undefined.
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise InvalidInput(f"{path}: expected numbers, got an array of {value.dtype}", path=path)
        array = value.astype(np.float64)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise InvalidInput(f"{path}[{i}]: expected a number, got {type(item).__name__}", path=path)
        array = np.asarray(value, dtype=np.float64)
    else:
        raise InvalidInput(f"{path}: expected a list of {dimension} numbers, got {type(value).__name__}", path=path)
    if array.ndim != 1 or array.shape[0] != dimension:
        got = array.shape[0] if array.ndim == 1 else f"shape {array.shape}"
        raise InvalidInput(f"{path}: expected {dimension} numbers, got {got}", path=path)
    with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
        vector = array.astype("<f4")
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        i = int(bad[0])
        why = "is not finite" if not np.isfinite(array[i]) else "overflows float32"
        raise InvalidInput(f"{path}[{i}] = {array[i]!r} {why}; embeddings must be finite", path=path)
    norm = np.float32(np.linalg.norm(vector.astype(np.float64)))
    if not np.isfinite(norm) or norm == 0:
        raise InvalidInput(
            f"{path}: vector length {float(norm)!r} is zero or overflows float32; cosine similarity is undefined",
            path=path,
        )
    return vector, float(norm)


def row_dots(matrix: F32, vector: F32) -> F32:
    """The dot product of each row of `matrix` with `vector`, computed on the calling thread.

    Not ``matrix @ vector``: that is OpenBLAS sgemv, which splits the rows over
    all cores. On a host whose cores are busy (Redis, other workers), waiting for
    a descheduled helper thread turned a 0.1 ms product into 10-20 ms (p50, 1,000
    rows; docs/messages.md). `np.vecdot` (NumPy 2) runs row by row on this thread
    at nearly single-threaded sgemv speed; `einsum` is the NumPy 1 fallback.
    """
    vecdot = getattr(np, "vecdot", None)
    if vecdot is not None:
        result: F32 = vecdot(matrix, vector)
    else:
        result = np.einsum("ij,j->i", matrix, vector)
    return result


@dataclass(eq=False)
class VectorSet:
    """Rows 0..count-1 of one CIM's vectors for one generation, in growable arrays.

    Rows are append-only within a generation, so a set can be brought up to date
    by appending the suffix it lacks, and views of its first n rows never change.
    """

    gen: str
    dimension: int
    count: int = 0
    vectors: F32 = field(init=False)
    seqs: npt.NDArray[np.uint32] = field(init=False)
    roles: npt.NDArray[np.uint8] = field(init=False)
    norms: F32 = field(init=False)

    def __post_init__(self) -> None:
        self._allocate(0)

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.seqs.nbytes + self.roles.nbytes + self.norms.nbytes)

    def _allocate(self, capacity: int) -> None:
        vectors = np.empty((capacity, self.dimension), dtype=np.float32)
        seqs = np.empty(capacity, dtype=np.uint32)
        roles = np.empty(capacity, dtype=np.uint8)
        norms = np.empty(capacity, dtype=np.float32)
        if self.count:
            vectors[: self.count] = self.vectors[: self.count]
            seqs[: self.count] = self.seqs[: self.count]
            roles[: self.count] = self.roles[: self.count]
            norms[: self.count] = self.norms[: self.count]
        self.vectors, self.seqs, self.roles, self.norms = vectors, seqs, roles, norms

    def extend(self, vector_bytes: bytes, row_bytes: bytes) -> None:
        """Append rows given as stored bytes (vectors and row records of the same rows)."""
        new = np.frombuffer(vector_bytes, dtype="<f4").reshape(-1, self.dimension)
        records = np.frombuffer(row_bytes, dtype=ROW_DTYPE)
        if new.shape[0] != records.shape[0]:
            raise ValueError(f"{new.shape[0]} vectors but {records.shape[0]} row records")
        end = self.count + new.shape[0]
        if end > self.vectors.shape[0]:
            # Doubling keeps appends amortised O(1) per row.
            self._allocate(max(end, 2 * self.vectors.shape[0], 64))
        self.vectors[self.count : end] = new
        self.seqs[self.count : end] = records["seq"]
        self.roles[self.count : end] = records["role"]
        self.norms[self.count : end] = records["norm"]
        self.count = end

    def top_k(self, query: F32, k: int, *, rows: int | None = None, role: int | None = None) -> list[tuple[int, float]]:
        """The k rows most similar to `query` among the first `rows`: ``[(row, cosine), ...]``.

        Exact: every row is scored (float32 dot products, `row_dots`), ranked by
        descending score, ties by ascending seq (older first). `query` must be
        finite and non-zero (see `check_vector`); it is scaled to unit length here,
        which keeps float32 dot products far from overflow.
        """
        n = self.count if rows is None else rows
        if n == 0:
            return []
        unit = (query.astype(np.float64) / np.linalg.norm(query.astype(np.float64))).astype(np.float32)
        scores = row_dots(self.vectors[:n], unit)
        scores /= self.norms[:n]
        if role is None:
            candidates = np.arange(n)
        else:
            candidates = np.flatnonzero(self.roles[:n] == role)
            scores = scores[candidates]
        if candidates.size == 0:
            return []
        if k < scores.size:
            # argpartition finds the k-th best score; everything tied with it is
            # kept so the final tie-break by seq is deterministic.
            kth = scores[np.argpartition(scores, scores.size - k)[scores.size - k]]
            keep = np.flatnonzero(scores >= kth)
        else:
            keep = np.arange(scores.size)
        rows_kept = candidates[keep]
        order = np.lexsort((self.seqs[rows_kept], -scores[keep]))[:k]
        return [(int(rows_kept[i]), float(scores[keep[i]])) for i in order]


class VectorCache:
    """Per-process LRU of `VectorSet`s by CIM id, bounded by bytes.

    Only ever a starting point: each search asks Redis for the generation and
    row count in the same step as the rows it lacks, so a cached set can never
    make a result stale, only cheaper. A set bigger than the whole budget is not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._sets: OrderedDict[str, VectorSet] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._total = 0

    @property
    def total_bytes(self) -> int:
        return self._total

    def get(self, cim_id: str) -> VectorSet | None:
        found = self._sets.get(cim_id)
        if found is not None:
            self._sets.move_to_end(cim_id)
        return found

    def put(self, cim_id: str, vectors: VectorSet) -> None:
        """Keep (or re-measure) `vectors` for `cim_id`, evicting the least recently used."""
        self.drop(cim_id)
        size = vectors.nbytes
        if size > self.max_bytes:
            return
        while self._total + size > self.max_bytes and self._sets:
            oldest = next(iter(self._sets))
            self.drop(oldest)
        self._sets[cim_id] = vectors
        self._sizes[cim_id] = size
        self._total += size

    def drop(self, cim_id: str) -> None:
        if self._sets.pop(cim_id, None) is not None:
            self._total -= self._sizes.pop(cim_id)
