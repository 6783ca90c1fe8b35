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
