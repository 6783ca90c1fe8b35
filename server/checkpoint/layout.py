"""Redis key names of the checkpoint saver: the one place that knows the layout.

Every key of one thread starts with ``<prefix>:cp:{<thread_id>}:``. The braces
are a Redis Cluster hash tag, so all of a thread's keys live in one slot and
one Lua script can change them atomically. The CIM agent uses the CIM id as its
thread id, so a CIM's checkpoints share the slot of its ``<prefix>:cim:{<id>}``
keys::

    <prefix>:cp:{T}:ns              SET   namespaces of the thread (encoded, see below)
    <prefix>:cp:{T}:runs            SET   run ids that have checkpoints in the thread
    <prefix>:cp:{T}:run:<run>       SET   "<ns>\\x1f<checkpoint id>" of that run's checkpoints
    <prefix>:cp:{T}:ids:<ns>        ZSET  checkpoint ids, all scored 0: ZRANGEBYLEX order is
                                          uuid6 order, which is creation order
    <prefix>:cp:{T}:blobs:<ns>      HASH  "<channel>\\x1f<version>" -> channel value, one field
                                          per channel version, shared by every checkpoint
                                          that holds that version; a value over
                                          chunks.CHUNK_BYTES is a marker there, its bytes
                                          in "<channel>\\x1f<version>\\x1f<i>" fields beside it
    <prefix>:cp:{T}:early:<ns>      SET   ids whose pending writes arrived before the checkpoint
    <prefix>:cp:{T}:c:<ns>:<id>     HASH  one checkpoint: c (checkpoint without values),
                                          m (metadata), p (parent id), b (blob fields it
                                          reads), r (run id), and one "w:<task>:<idx>" field
                                          per pending write (plus "x:<task>:<idx>\\x1f<i>"
                                          chunks of a large one)

Two registries live outside any thread's slot (on a Redis Cluster, on whichever
primary owns their own slot; see docs/checkpointer.md)::

    <prefix>:cp:threads             SET   thread ids, for list(None) across threads
    <prefix>:cp:run:<run>           SET   thread ids holding checkpoints of a run

No script touches them: the saver writes them beside its scripts (before the
first put of a thread), so the layout is the same on one node and on a cluster.
They are eventually consistent (a crash between the two steps leaves an entry
too many, or one missing after a concurrent delete), and a thread's own keys are
the truth: maintenance.plan_repair rebuilds the registries from those.

A namespace is encoded in key names with ``%`` and ``:`` percent-escaped, so the
parts of a key can always be told apart; the root namespace is the empty string.
"""

from __future__ import annotations

from uuid import UUID

# Separates channel from version in blob fields, and namespace from id in run
# sets. Neither LangGraph channel names nor namespaces use control characters;
# codec.py refuses a name containing one rather than store an ambiguous field.
UNIT_SEPARATOR = "\x1f"
# Joins the blob fields a checkpoint reads (its "b" field), split again in Lua.
RECORD_SEPARATOR = "\x1e"


def encode_ns(checkpoint_ns: str) -> str:
    """The namespace as it appears in key names: ``%`` and ``:`` escaped."""
    return checkpoint_ns.replace("%", "%25").replace(":", "%3A")


def decode_ns(encoded: str) -> str:
    """Inverse of `encode_ns`."""
    return encoded.replace("%3A", ":").replace("%25", "%")


ThreadId = str | int | UUID
"""What LangGraph accepts as a thread id; stored as its text."""


def check_thread_id(thread_id: object) -> str:
    """The thread id as a string; refuses ids that would break the hash tag.

    LangGraph passes thread ids through as given: str, int and uuid.UUID are
    stored by their text, so UUID("…") and "…" name the same thread.
    """
    if not isinstance(thread_id, str | int | UUID) or isinstance(thread_id, bool):
        raise TypeError(f"thread_id must be a str, int or uuid.UUID, got {type(thread_id).__name__}")
    text = str(thread_id)
    if not text:
        raise ValueError("thread_id must not be empty: '{}' would not be a hash tag")
    if "}" in text or "{" in text:
        raise ValueError(f"thread_id must not contain braces (it is the key's hash tag): {text!r}")
    return text


class CheckpointKeys:
    """Key names under one prefix. Tests use a unique prefix each."""

    def __init__(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("key_prefix must not be empty")
        self.prefix = prefix

    def threads(self) -> str:
        """Registry of all thread ids (outside any thread's slot)."""
        return f"{self.prefix}:cp:threads"

    def run_threads(self, run_id: str) -> str:
        """Registry of the threads holding checkpoints of one run (outside any thread's slot)."""
        return f"{self.prefix}:cp:run:{run_id}"

    def thread(self, thread_id: str) -> ThreadKeys:
        return ThreadKeys(f"{self.prefix}:cp:{{{thread_id}}}:")

    def namespaces_pattern(self) -> str:
        """SCAN pattern of every thread's namespace set (one per thread holding anything)."""
        return f"{glob_escape(self.prefix)}:cp:{{*}}:ns"

    def run_registry_pattern(self) -> str:
        """SCAN pattern of the run registries."""
        return f"{glob_escape(self.prefix)}:cp:run:*"


def glob_escape(text: str) -> str:
    """`text` as a literal in a Redis glob pattern (SCAN MATCH)."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


class ThreadKeys:
    """Key names of one thread; every one starts with `base` and so shares its slot."""

    __slots__ = ("base",)

    def __init__(self, base: str) -> None:
        self.base = base

    @property
    def namespaces(self) -> str:
        return f"{self.base}ns"

    @property
    def runs(self) -> str:
        return f"{self.base}runs"

    def run(self, run_id: str) -> str:
        return f"{self.base}run:{run_id}"

    def ids(self, ns: str) -> str:
        return f"{self.base}ids:{ns}"

    def blobs(self, ns: str) -> str:
        return f"{self.base}blobs:{ns}"

    def early(self, ns: str) -> str:
        return f"{self.base}early:{ns}"

    def checkpoint_prefix(self, ns: str) -> str:
        """Prefix of the checkpoint hashes of one namespace; the id follows."""
        return f"{self.base}c:{ns}:"

    def checkpoint(self, ns: str, checkpoint_id: str) -> str:
        return f"{self.base}c:{ns}:{checkpoint_id}"
