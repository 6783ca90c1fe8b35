"""indexes.calls: a commit's index entries on a Redis Cluster, one index.lua call per slot (no Redis)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from cimhub.server.checkpoint.layout import CheckpointKeys, glob_escape
from cimhub.server.checkpoint.maintenance import run_of_registry_key, thread_of_namespaces_key
from cimhub.server.store.indexes import IndexEntry, calls, entries_for
from cimhub.server.store.keys import Keys

KEYS_ = Keys("p", cluster=True)
DOC = {"dealId": "d1", "userId": "u1", "status": "draft", "updatedAt": 1700}


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_each_call_holds_only_keys_of_one_slot_and_every_entry_once() -> None:
    entries = [*entries_for(KEYS_, DOC), IndexEntry(KEYS_.by_status("complete"), "remove")]
    made = calls(KEYS_, "c1", 7, entries, epoch="e1", at=1700)
    assert len(made) == len({slot(entry.index) for entry in entries})
    seen = []
    for call in made:
        assert len({slot(key) for key in call.keys}) == 1, call.keys
        assert call.args[:6] == ["c1", 7, "e1", 1700, "", b""]
        for index, guard, (op, score) in zip(
            call.keys[::2], call.keys[1::2], zip(call.args[6::2], call.args[7::2], strict=True), strict=True
        ):
            assert guard == KEYS_.index_guard(index)
            seen.append(IndexEntry(index, op, score))
    assert sorted(seen, key=repr) == sorted(entries, key=repr)


def test_entries_in_one_slot_share_one_call() -> None:
    # Two indexes with one hash tag are in one slot: one call, both pairs.
    same = [IndexEntry("p:idx:status:{x}", "add", 1), IndexEntry("p:idx:deal:{x}", "remove")]
    (call,) = calls(KEYS_, "c1", 3, same, epoch="e1", at=1)
    assert call.keys == ["p:idx:status:{x}", "p:idx:status:{x}:rev", "p:idx:deal:{x}", "p:idx:deal:{x}:rev"]
    assert call.args[6:] == ["add", 1, "remove", 0]


def test_the_deal_event_rides_on_the_deal_index_call() -> None:
    made = calls(
        KEYS_, "c1", 2, entries_for(KEYS_, DOC), epoch="e1", at=1, publish=(KEYS_.deal_channel("d1"), b"event")
    )
    with_event = [call for call in made if call.args[4]]
    assert len(with_event) == 1
    assert with_event[0].args[4:6] == [KEYS_.deal_channel("d1"), b"event"]
    assert KEYS_.by_deal("d1") in with_event[0].keys


def test_an_event_with_no_index_in_its_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="slot of channel"):
        calls(
            KEYS_,
            "c1",
            2,
            [IndexEntry(KEYS_.by_user("u1"), "add", 1)],
            epoch="e1",
            at=1,
            publish=(KEYS_.deal_channel("d9"), b"e"),
        )


def test_a_gone_document_removes_the_entries_it_had() -> None:
    entries = entries_for(KEYS_, None, deal_id="d1", user_id="u1", status="draft")
    assert {entry.op for entry in entries} == {"remove"}
    assert {entry.index for entry in entries} == {KEYS_.by_deal("d1"), KEYS_.by_user("u1"), KEYS_.by_status("draft")}


def test_registry_repair_reads_thread_and_run_ids_back_from_key_names() -> None:
    keys = CheckpointKeys("pre:fix")
    assert thread_of_namespaces_key(keys, keys.thread("cim-1").namespaces) == "cim-1"
    assert thread_of_namespaces_key(keys, keys.thread("cim-1").ids("")) is None
    assert thread_of_namespaces_key(keys, "other:cp:{cim-1}:ns") is None
    assert run_of_registry_key(keys, keys.run_threads("run-9")) == "run-9"
    assert run_of_registry_key(keys, keys.threads()) is None


def test_glob_escape_makes_a_prefix_literal() -> None:
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert CheckpointKeys("t[1]").namespaces_pattern() == "t\\[1\\]:cp:{*}:ns"
