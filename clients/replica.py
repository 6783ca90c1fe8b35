"""A local copy of one topic's state, kept current by applying the hub's patches.

Pure logic, no I/O: the client feeds it snapshot and patch frames and acts on
what it raises. For sequenced topics (``cim:``, ``messages:``) the hub sends
revisions r+1, r+2, ... without gaps; the replica checks that, ignores repeats
(a resume may replay what it already has), and raises `ReplicaGap` when a patch
does not follow, so the client resubscribes from the revision it holds. A
``cim:`` or ``messages:`` revision is named by its commit id too: the replica resumes from
that id, so after Redis came back older the hub answers with a reset snapshot
rather than patches of another history. A
``deal:`` topic is not sequenced (revision 0): its patches are applied as they
come and a lost place is repaired by a fresh snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer

from cimhub.protocol.frames import PatchFrame, SnapshotFrame, topic_parts
from cimhub.protocol.patch import JsonOp, apply

SEQUENCED_KINDS = frozenset({"cim", "messages"})


@dataclass(frozen=True)
class Change:
    """One change of a subscription, with the whole document as it stood right after it.

    `snapshot` is True when the replica was replaced rather than patched (a
    resync after a reconnect; `reset` when the hub could not resume from the
    replica's revision, or when changes queued faster than they were read and
    were folded into one). `deleted` is True for the change that deleted the
    CIM; the subscription ends after it.
    """

    topic: str
    revision: int
    epoch: str
    document: Any
    ops: list[JsonOp] = field(default_factory=list)
    commit: str | None = None
    mutation: str | None = None
    mutation_id: str | None = None
    actor: str | None = None
    ts: int | None = None
    deleted: bool = False
    snapshot: bool = False
    reset: bool = False


class ReplicaGap(Exception):
    """A patch does not follow the replica; resubscribe (resuming, unless `Replica.loaded` went False)."""


class Replica:
    """The state of one topic: `document` at `revision` of `epoch`.

    Each change makes a new document object (the previous one is left as it
    was), so a `Change` handed out earlier keeps describing its own revision.
    """

    def __init__(self, topic: str) -> None:
        kind, _ = topic_parts(topic)
        self.topic = topic
        self.sequenced = kind in SEQUENCED_KINDS
        self.document: Any = None
        self.revision = 0
        self.epoch = ""
        self.commit: str | None = None
        """The commit id of `revision`, for topics that have them."""
        self.loaded = False

    def resume_point(self) -> dict[str, Any] | None:
        """What to put in a subscribe frame's `resume`: None means "send me a snapshot"."""
        if not (self.loaded and self.sequenced):
            return None
        point: dict[str, Any] = {"revision": self.revision, "epoch": self.epoch}
        if self.commit:
            point["commit"] = self.commit
        return point

    def forget(self) -> None:
        """Drop the state, so the next subscribe asks for a fresh snapshot."""
        self.loaded = False

    def load(self, frame: SnapshotFrame) -> Change:
        """Replace the state with a snapshot."""
        self.document, self.revision, self.epoch, self.loaded = frame.data, frame.revision, frame.epoch, True
        self.commit = frame.commit
        return Change(
            self.topic, frame.revision, frame.epoch, frame.data, snapshot=True, reset=frame.reset, commit=frame.commit
        )

    def at(self, revision: int, epoch: str, commit: str | None) -> bool:
        """Whether the replica holds exactly this change (a `subscribed` frame's end point)."""
        if not self.loaded or (self.revision, self.epoch) != (revision, epoch):
            return False
        return commit is None or self.commit is None or commit == self.commit

    def apply(self, frame: PatchFrame) -> Change | None:
        """Apply one patch; None when it is a repeat (or there is no snapshot yet to apply it to).

        Raises ReplicaGap when it does not follow; if its ops do not fit the
        document, the state is also forgotten, because resuming from a document
        that disagrees with the hub would only repeat the failure.
        """
        if not self.loaded:
            return None
        if self.sequenced:
            if frame.epoch != self.epoch:
                raise ReplicaGap(f"{self.topic}: epoch changed from {self.epoch!r} to {frame.epoch!r}")
            if frame.revision < self.revision:
                return None
            if frame.revision == self.revision:
                if frame.commit and self.commit and frame.commit != self.commit:
                    raise ReplicaGap(f"{self.topic}: revision {frame.revision} is another commit than the one held")
                return None
            if frame.revision != self.revision + 1:
                raise ReplicaGap(f"{self.topic}: expected revision {self.revision + 1}, got {frame.revision}")
        if frame.deleted:
            document = None
        else:
            try:
                document = apply(self.document, frame.ops)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                self.forget()
                raise ReplicaGap(f"{self.topic}: revision {frame.revision} does not apply: {exc}") from None
        self.document, self.revision, self.commit = document, frame.revision, frame.commit
        return Change(
            self.topic,
            frame.revision,
            frame.epoch,
            document,
            ops=frame.ops,
            mutation=frame.mutation,
            mutation_id=frame.mutationId,
            actor=frame.actor,
            ts=frame.ts,
            deleted=frame.deleted,
            commit=frame.commit,
        )
