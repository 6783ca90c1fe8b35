"""The TypedDicts the hub builds frames with (protocol/frames.py) say exactly what the models say.

mypy checks every `send(...)` in the server against the TypedDicts; this test
checks the TypedDicts against the pydantic models that define the protocol, so
the two cannot drift apart.
"""

from __future__ import annotations

import typing

import jsonschema
import pytest
from pydantic import BaseModel
from support.wire import check_server_frame

from cimhub.protocol import frames as f
from cimhub.protocol.errors import InvalidInput, WireErrorOut

PAIRS: list[tuple[type[typing.Any], type[BaseModel]]] = [
    (f.ReadyOut, f.ReadyFrame),
    (f.SnapshotOut, f.SnapshotFrame),
    (f.PatchOut, f.PatchFrame),
    (f.SubscribedOut, f.SubscribedFrame),
    (f.UnsubscribedOut, f.UnsubscribedFrame),
    (f.ResultOut, f.ResultFrame),
    (f.ErrorOut, f.ErrorFrame),
    (f.PingOut, f.PingFrame),
    (f.PongOut, f.PongFrame),
    (WireErrorOut, f.WireError),
]


@pytest.mark.parametrize(("typed", "model"), PAIRS, ids=[model.__name__ for _, model in PAIRS])
def test_typed_frame_has_the_models_fields(typed: type[typing.Any], model: type[BaseModel]) -> None:
    assert set(typing.get_type_hints(typed)) == set(model.model_fields)
    # A key the model requires, the server must always send.
    required_by_model = {name for name, field in model.model_fields.items() if field.is_required()}
    assert required_by_model <= typed.__required_keys__


def test_every_server_frame_type_has_a_typed_dict() -> None:
    typed_types = {typing.get_args(typing.get_type_hints(t)["type"])[0] for t in typing.get_args(f.Outbound)}
    schema = f.SERVER_FRAME.json_schema()
    model_types = {d["properties"]["type"]["const"] for d in schema["$defs"].values() if "type" in d["properties"]}
    assert typed_types == model_types


def test_a_built_error_frame_parses_as_the_model() -> None:
    frame: f.ErrorOut = {"type": "error", "id": "m1", "error": InvalidInput("bad", path="args.x").to_wire()}
    parsed = f.SERVER_FRAME.validate_python(frame)
    assert isinstance(parsed, f.ErrorFrame)
    assert parsed.error.path == "args.x"


def test_the_schema_check_of_the_raw_test_client_refuses_a_frame_outside_the_protocol() -> None:
    validator = jsonschema.Draft202012Validator(f.json_schema()["server"])
    check_server_frame(validator, {"type": "pong", "ts": 7})
    for bad in ({"type": "patch", "topic": "cim:c1"}, {"type": "ready", "userId": 1}, {"type": "teleport"}):
        with pytest.raises(AssertionError, match="outside /v1/schema"):
            check_server_frame(validator, bad)
