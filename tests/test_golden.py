"""The golden frames of tests/golden/ against the wire protocol (protocol/frames.py).

The same files are replayed by the browser client's tests (tests/js/), so when a
frame model changes, either these tests fail or the golden files change with
it, and then the JavaScript tests see the new frames too.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from cimhub.clients.replica import Replica, ReplicaGap
from cimhub.protocol import frames as f
from cimhub.protocol.patch import apply

GOLDEN = Path(__file__).parent / "golden"
ADAPTERS: dict[str, TypeAdapter[Any]] = {"client": f.CLIENT_FRAME, "server": f.SERVER_FRAME}


def frame_types(union: Any) -> set[str]:
    """The `type` literals of a discriminated union of frame models."""
    (members, *_metadata) = typing.get_args(union)
    return {typing.get_args(model.model_fields["type"].annotation)[0] for model in typing.get_args(members)}


def golden_files(direction: str) -> list[Path]:
    return sorted((GOLDEN / direction).glob("*.json"))


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


ALL = [(direction, path) for direction in ADAPTERS for path in golden_files(direction)]


@pytest.mark.parametrize(("direction", "path"), ALL, ids=[f"{d}/{p.name}" for d, p in ALL])
def test_golden_frame_is_valid(direction: str, path: Path) -> None:
    raw = load(path)
    frame = ADAPTERS[direction].validate_python(raw)
    # <type>.json or <type>.<variant>.json: the name says which frame it is.
    assert frame.type == path.name.split(".")[0], f"{path.name} holds a {frame.type!r} frame"
    # Nothing in the file is dropped or reshaped by the model.
    assert ADAPTERS[direction].dump_python(frame, mode="json", exclude_unset=True) == raw


@pytest.mark.parametrize("direction", list(ADAPTERS))
def test_every_frame_type_has_a_golden_file(direction: str) -> None:
    union = f.ClientFrame if direction == "client" else f.ServerFrame
    types = frame_types(union)
    assert types, "no frame types found in the union"
    present = {path.name.split(".")[0] for path in golden_files(direction)}
    missing = sorted(t for t in types if not (GOLDEN / direction / f"{t}.json").exists())
    assert not missing, f"{direction} frame types without a tests/golden/{direction}/<type>.json: {missing}"
    unknown = sorted(present - types)
    assert not unknown, f"golden files for frame types {direction} frames do not have: {unknown}"


def test_cim_patches_replay_to_the_hubs_document() -> None:
    """The walk-through the JS replica test replays, checked with the Python patch logic (jsonpatch)."""
    snapshot = load(GOLDEN / "server" / "snapshot.json")
    patches = sorted(
        (
            frame
            for frame in map(load, golden_files("server"))
            if frame["type"] == "patch" and frame["topic"] == snapshot["topic"]
        ),
        key=lambda frame: frame["revision"],
    )
    document = snapshot["data"]
    revision = snapshot["revision"]
    for frame in patches:
        if frame["revision"] > 10:
            break
        assert frame["revision"] == revision + 1 and frame["epoch"] == snapshot["epoch"]
        document = apply(document, frame["ops"])
        revision = frame["revision"]
    assert revision == 10
    assert document == load(GOLDEN / "replay" / "cim.r10.json")


def test_deal_patches_replay_to_the_expected_list() -> None:
    document = load(GOLDEN / "server" / "snapshot.deal.json")["data"]
    for name in ("deal-add", "deal-update", "deal-remove"):
        document = apply(document, load(GOLDEN / "server" / f"patch.{name}.json")["ops"])
    assert document == load(GOLDEN / "replay" / "deal.json")


def test_presence_patches_replay_to_the_expected_members() -> None:
    """Join, update, leave: one op each on the members map, named by `mutation`."""
    document = load(GOLDEN / "server" / "snapshot.presence.json")["data"]
    for name in ("join", "update", "leave"):
        frame = load(GOLDEN / "server" / f"patch.presence-{name}.json")
        assert frame["mutation"] == name and len(frame["ops"]) == 1 and frame["revision"] == 0
        document = apply(document, frame["ops"])
    assert document == load(GOLDEN / "replay" / "presence.json")


def test_golden_patches_use_only_the_ops_the_browser_client_implements() -> None:
    """server/static/cimhub.js applies add/remove/replace only; protocol/patch.py emits nothing else."""
    ops = {op["op"] for path in golden_files("server") for op in load(path).get("ops", [])}
    assert ops == {"add", "remove", "replace"}


def test_commit_ids_chain_through_the_protocol_2_frames() -> None:
    """A resume names the commit id of the last change applied; the hub's answers carry the ids to name."""
    assert load(GOLDEN / "server" / "ready.v2.json")["protocol"] == f.PROTOCOL_VERSION == 2
    snapshot = load(GOLDEN / "server" / "snapshot.commit.json")
    patch = load(GOLDEN / "server" / "patch.commit.json")
    resume = load(GOLDEN / "client" / "subscribe.resume-commit.json")["resume"]
    subscribed = load(GOLDEN / "server" / "subscribed.commit.json")
    assert (patch["revision"], patch["epoch"]) == (snapshot["revision"] + 1, snapshot["epoch"])
    assert len({snapshot["commit"], patch["commit"], subscribed["commit"]}) == 3
    assert resume == {"revision": patch["revision"], "epoch": patch["epoch"], "commit": patch["commit"]}
    assert subscribed["revision"] == resume["revision"] + 1
    document = apply(snapshot["data"], patch["ops"])
    assert document["title"] == "Project Kestrel II" and document["revision"] == patch["revision"]
    reset = load(GOLDEN / "server" / "snapshot.reset-commit.json")
    assert reset["reset"] is True and reset["commit"] == subscribed["commit"]


def test_a_messages_topic_is_named_by_commit_ids_too() -> None:
    """The conversation resumes from the commit id of the last message applied, like a CIM."""
    snapshot = load(GOLDEN / "server" / "snapshot.messages-commit.json")
    patch = load(GOLDEN / "server" / "patch.messages-commit.json")
    replica = Replica(snapshot["topic"])
    replica.load(f.SERVER_FRAME.validate_python(snapshot))
    change = replica.apply(f.SERVER_FRAME.validate_python(patch))
    assert change is not None and change.commit == patch["commit"] != snapshot["commit"]
    assert [m["role"] for m in replica.document["messages"]] == ["user", "assistant"]
    assert replica.resume_point() == {"revision": 2, "epoch": patch["epoch"], "commit": patch["commit"]}
    with pytest.raises(ReplicaGap):
        replica.apply(f.SERVER_FRAME.validate_python({**patch, "commit": "0123456789abcdef"}))
