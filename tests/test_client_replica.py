"""The client's pure parts: the replica, the outbox, back-off, URLs, close codes, the change queue."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from cimhub.clients.backoff import Backoff
from cimhub.clients.errors import close_error, is_stop_code
from cimhub.clients.outbox import Outbox
from cimhub.clients.replica import Change, Replica, ReplicaGap
from cimhub.clients.subscription import Subscription
from cimhub.clients.transport import ws_url
from cimhub.protocol.errors import AccessDenied, NotFound, Unauthenticated, Unavailable
from cimhub.protocol.frames import PatchFrame, ResultFrame, SnapshotFrame


def snapshot(
    topic: str = "cim:c1", revision: int = 3, epoch: str = "e1", data: Any = None, reset: bool = False
) -> SnapshotFrame:
    return SnapshotFrame(
        type="snapshot",
        topic=topic,
        revision=revision,
        epoch=epoch,
        data={"stage": "welcome", "slides": []} if data is None else data,
        reset=reset,
    )


def patch(
    revision: int, ops: list[dict[str, Any]], topic: str = "cim:c1", epoch: str = "e1", **extra: Any
) -> PatchFrame:
    return PatchFrame(type="patch", topic=topic, revision=revision, epoch=epoch, ops=ops, **extra)


STAGE_OUTLINE = [{"op": "replace", "path": "/stage", "value": "outline"}]


# -- replica -------------------------------------------------------------------


def test_patches_apply_in_order_and_each_change_keeps_its_own_document() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    first = replica.apply(patch(4, STAGE_OUTLINE, mutation="navigateToStage", actor="u1", mutationId="m1"))
    second = replica.apply(patch(5, [{"op": "add", "path": "/slides/0", "value": {"id": "s1"}}]))
    assert first is not None and second is not None
    assert (first.revision, first.mutation, first.actor, first.mutation_id) == (4, "navigateToStage", "u1", "m1")
    assert first.document == {"stage": "outline", "slides": []}
    assert second.document == {"stage": "outline", "slides": [{"id": "s1"}]}
    assert replica.document is second.document and replica.revision == 5


def test_a_repeat_is_ignored() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    assert replica.apply(patch(3, STAGE_OUTLINE)) is None
    assert replica.document["stage"] == "welcome"


def test_a_gap_raises_and_keeps_the_state_to_resume_from() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    with pytest.raises(ReplicaGap, match="expected revision 4, got 6"):
        replica.apply(patch(6, STAGE_OUTLINE))
    assert replica.resume_point() == {"revision": 3, "epoch": "e1"}


def test_a_new_epoch_is_a_gap() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    with pytest.raises(ReplicaGap, match="epoch"):
        replica.apply(patch(4, STAGE_OUTLINE, epoch="e2"))


def test_ops_that_do_not_fit_forget_the_state_so_the_next_subscribe_takes_a_snapshot() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    with pytest.raises(ReplicaGap, match="does not apply"):
        replica.apply(patch(4, [{"op": "remove", "path": "/nope"}]))
    assert replica.resume_point() is None
    assert replica.apply(patch(5, STAGE_OUTLINE)) is None  # nothing to apply to until the snapshot


def test_patches_before_the_first_snapshot_are_ignored() -> None:
    assert Replica("cim:c1").apply(patch(1, STAGE_OUTLINE)) is None


def test_deal_topics_are_not_sequenced_and_never_resume() -> None:
    replica = Replica("deal:d1")
    replica.load(snapshot("deal:d1", revision=0, epoch="", data={}))
    row = {"id": "c1", "title": "Acme"}
    added = replica.apply(patch(0, [{"op": "add", "path": "/c1", "value": row}], topic="deal:d1", epoch=""))
    removed = replica.apply(patch(0, [{"op": "remove", "path": "/c1"}], topic="deal:d1", epoch=""))
    assert added is not None and added.document == {"c1": row}
    assert removed is not None and removed.document == {}
    assert replica.resume_point() is None


def test_a_delete_leaves_no_document() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    change = replica.apply(patch(4, [], deleted=True))
    assert change is not None and change.deleted and replica.document is None


def test_a_snapshot_replaces_the_state() -> None:
    replica = Replica("cim:c1")
    replica.load(snapshot())
    change = replica.load(snapshot(revision=9, epoch="e2", data={"stage": "outline"}, reset=True))
    assert (change.snapshot, change.reset, change.revision) == (True, True, 9)
    assert replica.resume_point() == {"revision": 9, "epoch": "e2"}


# -- outbox ----------------------------------------------------------------------


async def test_outbox_keeps_order_and_ids_and_answers_once() -> None:
    outbox = Outbox()
    first = outbox.add({"type": "mutate", "mutationId": "m1"})
    second = outbox.add({"type": "query"})
    assert [p.request_id for p in outbox] == [first.request_id, second.request_id]
    assert first.mutation_id == "m1" and second.mutation_id is None
    answer = ResultFrame(type="result", id=first.request_id, result={"ok": True})
    assert outbox.resolve(answer)
    assert not outbox.resolve(answer)  # a late repeat finds nobody waiting
    assert (await first.future).result == {"ok": True}
    assert outbox.reject(second.request_id, NotFound("gone"))
    with pytest.raises(NotFound):
        await second.future
    assert len(outbox) == 0


async def test_outbox_withdraw_and_fail_all() -> None:
    outbox = Outbox()
    gone = outbox.add({"type": "query"})
    kept = outbox.add({"type": "query"})
    outbox.withdraw(gone.request_id)
    assert outbox.get(gone.request_id) is None
    outbox.fail_all(Unavailable("closing"))
    with pytest.raises(Unavailable):
        await kept.future


# -- back-off --------------------------------------------------------------------------


def test_backoff_grows_jittered_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(base=0.5, cap=10.0, rng=random.Random(7))
    delays = [backoff.next() for _ in range(10)]
    for n, delay in enumerate(delays):
        ceiling = min(10.0, 0.5 * 2**n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 10.0 and delays[-1] >= 5.0
    backoff.reset()
    assert backoff.next() <= 0.5


def test_backoff_jitter_spreads_clients() -> None:
    delays = {round(Backoff(rng=random.Random(seed)).delay(4), 6) for seed in range(20)}
    assert len(delays) > 15


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)


# -- URLs and close codes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/v1/ws"),
        ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/v1/ws"),
        ("https://hub.example.com/cimhub/", "wss://hub.example.com/cimhub/v1/ws"),
        ("ws://127.0.0.1:8000", "ws://127.0.0.1:8000/v1/ws"),
        ("wss://hub.example.com/custom/ws", "wss://hub.example.com/custom/ws"),
    ],
)
def test_ws_url(given: str, expected: str) -> None:
    assert ws_url(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://x", "http://"])
def test_ws_url_refuses_what_is_not_a_hub_url(bad: str) -> None:
    with pytest.raises(ValueError, match="expected a hub URL"):
        ws_url(bad)


def test_stop_codes() -> None:
    assert [is_stop_code(c) for c in (None, 1000, 1012, 4000, 4008, 4401, 4403, 4499, 4500)] == [
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    assert isinstance(close_error(4403, "bad", "token signature invalid"), Unauthenticated)
    assert "token signature invalid" in close_error(4403, "bad", "token signature invalid").message
    assert isinstance(close_error(4401, ""), Unauthenticated)
    assert isinstance(close_error(4406, ""), AccessDenied)
    assert close_error(4429, "").retryable  # "back off, then reconnect"


# -- the change queue ---------------------------------------------------------------------


async def _unsubscribe(sub: Subscription) -> None:
    sub.end()


async def test_a_slow_reader_gets_changes_folded_into_one_snapshot() -> None:
    sub = Subscription("cim:c1", max_queued=3, unsubscribe=_unsubscribe)
    for revision in range(1, 5):
        sub.deliver(Change("cim:c1", revision, "e1", {"n": revision}))
    sub.end()
    changes = [change async for change in sub]
    assert [c.revision for c in changes] == [4]
    assert changes[0].snapshot and changes[0].reset and changes[0].document == {"n": 4}


async def test_an_ended_subscription_raises_the_hubs_reason_after_the_queue() -> None:
    sub = Subscription("cim:c1", max_queued=10, unsubscribe=_unsubscribe)
    sub.deliver(Change("cim:c1", 1, "e1", {}))
    sub.end(AccessDenied("access revoked"))
    assert (await sub.__anext__()).revision == 1
    with pytest.raises(AccessDenied):
        await sub.__anext__()
    with pytest.raises(AccessDenied):
        await sub.ready


async def test_a_reader_waits_for_the_next_change() -> None:
    sub = Subscription("cim:c1", max_queued=10, unsubscribe=_unsubscribe)
    reader = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0)
    assert not reader.done()
    sub.deliver(Change("cim:c1", 7, "e1", {}))
    assert (await reader).revision == 7
