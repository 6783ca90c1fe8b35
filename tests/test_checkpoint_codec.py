"""The saver's pure parts, without Redis: key layout, framing, filters, and the list plan's merge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT
from langgraph.types import Interrupt

from cimhub.server.checkpoint import listing
from cimhub.server.checkpoint.codec import (
    check_name,
    decode_writes,
    encode_write,
    metadata_matches,
    pack_typed,
    unpack_typed,
    write_index,
)
from cimhub.server.checkpoint.layout import CheckpointKeys, check_thread_id, decode_ns, encode_ns
from cimhub.server.checkpoint.listing import Listing
from cimhub.server.checkpoint.steps import Emit, Plan, Run

serde = JsonPlusSerializer()


@given(st.text())
def test_namespace_encoding_round_trips_and_leaves_no_colon(ns: str) -> None:
    encoded = encode_ns(ns)
    assert ":" not in encoded
    assert decode_ns(encoded) == ns


def test_keys_carry_the_thread_as_hash_tag() -> None:
    keys = CheckpointKeys("cimhub").thread("cim-1")
    ns = encode_ns("section:1|slide:2")
    assert keys.checkpoint(ns, "id-1") == "cimhub:cp:{cim-1}:c:section%3A1|slide%3A2:id-1"
    assert keys.ids("") == "cimhub:cp:{cim-1}:ids:"
    assert keys.namespaces == "cimhub:cp:{cim-1}:ns"


@pytest.mark.parametrize(("thread_id", "error"), [("", ValueError), ("a}b", ValueError), (None, TypeError)])
def test_thread_ids_are_checked(thread_id: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_thread_id(thread_id)


def test_names_with_separator_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="channel name"):
        check_name("channel name", "a\x1fb")


@given(st.text(min_size=1).filter(lambda t: "\x00" not in t), st.binary())
def test_typed_values_are_framed_losslessly(type_: str, data: bytes) -> None:
    assert unpack_typed(pack_typed((type_, data))) == (type_, data)


def test_writes_round_trip_in_writes_sort_key_order() -> None:
    stored = dict(
        [
            encode_write(serde, "t2", "p:b", write_index("messages", 0), "messages", ["hi"]),
            encode_write(serde, "t1", "p:a", write_index(ERROR, 0), ERROR, "boom"),
            encode_write(serde, "t1", "p:a", write_index(INTERRUPT, 1), INTERRUPT, [Interrupt("?")]),
            encode_write(serde, "t1", "p:a", write_index("x", 2), "x", {"n": 1}),
        ]
    )
    assert b"w:t1:-1" in stored and b"w:t1:-3" in stored  # special writes in their fixed slots
    writes = decode_writes(serde, {b"c": b"ignored", **stored})
    assert [(task, channel) for task, channel, _ in writes] == [
        ("t1", INTERRUPT),
        ("t1", ERROR),
        ("t1", "x"),
        ("t2", "messages"),
    ]
    assert writes[0][2] == [Interrupt("?")]


@pytest.mark.parametrize(
    ("metadata", "filter", "matches"),
    [
        ({"source": "loop", "step": 2}, {"source": "loop"}, True),
        ({"source": "loop", "step": 2}, {"step": 2.0}, True),
        ({"flag": 1}, {"flag": True}, False),
        ({"deal": {"id": "d", "stage": "draft"}}, {"deal": {"stage": "draft", "id": "d"}}, True),
        ({"deal": {"id": "d", "stage": "draft"}}, {"deal": {"id": "d"}}, False),
        ({"tags": ["a", "b"]}, {"tags": ("a", "b")}, True),
        ({"x": None}, {"x": None}, True),
        ({}, {"x": None}, False),
        ({"a": 1}, None, True),
    ],
)
def test_metadata_filters_compare_as_json(metadata: dict[str, Any], filter: Any, matches: bool) -> None:
    assert metadata_matches(metadata, filter) is matches


class Recorded(Listing):
    """A listing whose pages are recorded instead of loaded."""

    pages: list[list[tuple[str, str]]]

    def _page(self, thread_id: str, page: list[tuple[str, str]]) -> Plan[None]:
        if self.left is not None:
            page = page[: self.left]
            self.left -= len(page)
        self.pages.append(page)
        yield from ()


def drive(plan: Plan[None], indexes: dict[str, list[str]]) -> Iterator[Run]:
    """Answer the plan's ZREVRANGEBYLEX commands from in-memory indexes (keyed by encoded namespace)."""
    reply: list[Any] = []
    try:
        step = next(plan)
        while True:
            assert isinstance(step, Run) and not isinstance(step, Emit)
            yield step
            reply = []
            for command in step.commands:
                assert command[0] == "ZREVRANGEBYLEX"
                _, key, upper, _, _, offset, count = command
                ids = sorted(indexes[key.rsplit(":", 1)[1]], reverse=True)
                if upper != "+":
                    ids = [i for i in ids if i < upper[1:]]
                reply.append([i.encode() for i in ids[offset : offset + count]])
            step = plan.send(reply)
    except StopIteration:
        return


def test_the_list_plan_merges_namespaces_by_id_a_page_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listing, "PAGE", 3)
    indexes = {"": ["01", "04", "05", "09"], "child%3A1": ["02", "03", "06", "07", "08"]}
    recorded = Recorded(CheckpointKeys("p"), serde, None, None)
    recorded.pages = []
    runs = list(drive(recorded._merge("t", sorted(indexes), None), indexes))
    flat = [cid for page in recorded.pages for cid, _ in page]
    assert flat == ["09", "08", "07", "06", "05", "04", "03", "02", "01"]
    assert all(len(page) <= 3 for page in recorded.pages)
    assert len(runs) > 2  # ids came in pages, refilled as the merge consumed them

    limited = Recorded(CheckpointKeys("p"), serde, None, 4)
    limited.pages = []
    list(drive(limited._merge("t", sorted(indexes), "08"), indexes))  # before "08", at most 4
    assert [cid for page in limited.pages for cid, _ in page] == ["07", "06", "05", "04"]
