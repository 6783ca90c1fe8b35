"""The blocking HTTP client against a mock transport: bodies, headers, errors, retries with the same id."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from cimhub.clients.backoff import Backoff
from cimhub.clients.errors import HubUnreachable
from cimhub.clients.http import HttpClient
from cimhub.protocol.errors import CimhubError, Conflict, NotFound, Unauthenticated, Unavailable

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, retries: int = 3, token: str | None = "tok") -> tuple[HttpClient, list[float]]:
    slept: list[float] = []
    return HttpClient(
        "http://hub.test/",
        token,
        act_as="u9",
        retries=retries,
        backoff=Backoff(0.1, 1.0),
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
    ), slept


def error(code: str, message: str, retryable: bool, status: int) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "retryable": retryable}})


def test_mutate_posts_name_args_and_a_fresh_mutation_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"result": {"changed": True}, "cimId": "c1", "revision": 4, "duplicate": False})

    hub, _ = client(handler)
    result = hub.mutate("navigateToStage", {"cimId": "c1", "stage": "outline"}, expected_revision=3)
    assert (result.result, result.cim_id, result.revision, result.duplicate) == ({"changed": True}, "c1", 4, False)
    body = json.loads(seen[0].content)
    assert seen[0].url == "http://hub.test/v1/mutate"
    assert seen[0].headers["authorization"] == "Bearer tok" and seen[0].headers["x-cimhub-act-as"] == "u9"
    assert body["name"] == "navigateToStage" and body["expectedRevision"] == 3 and len(body["mutationId"]) == 36
    hub.mutate("x")
    assert json.loads(seen[1].content)["mutationId"] != body["mutationId"]


def test_query_returns_the_result() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"name": "get", "args": {"cimId": "c1"}}
        return httpx.Response(200, json={"result": {"cim": {"id": "c1"}, "revision": 2}})

    hub, _ = client(handler)
    assert hub.query("get", {"cimId": "c1"}) == {"cim": {"id": "c1"}, "revision": 2}


def test_hub_errors_become_typed_exceptions_without_retry() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return error("not_found", "CIM 'c9' not found", False, 404)

    hub, slept = client(handler)
    with pytest.raises(NotFound, match="c9"):
        hub.query("get", {"cimId": "c9"})
    assert calls == 1 and slept == []


def test_retryable_errors_are_retried_with_the_same_mutation_id() -> None:
    ids: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids.append(json.loads(request.content)["mutationId"])
        if len(ids) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if len(ids) == 2:
            return error("overloaded", "busy", True, 503)
        return httpx.Response(200, json={"result": {}, "cimId": "c1", "revision": 2, "duplicate": True})

    hub, slept = client(handler)
    assert hub.mutate("create", {"title": "x"}, mutation_id="m-1").duplicate
    assert ids == ["m-1"] * 3 and len(slept) == 2 and slept[0] <= slept[1] * 2


def test_retries_give_up_with_the_last_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    hub, slept = client(handler, retries=2)
    with pytest.raises(HubUnreachable, match="connection refused"):
        hub.query("get")
    assert len(slept) == 2


def test_answers_that_are_not_the_hubs() -> None:
    responses = iter(
        [
            httpx.Response(404, text="Not Found"),
            httpx.Response(401, text="nope"),
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.Response(200, text="[1, 2]"),
            error("conflict", "stale revision", False, 409),
        ]
    )
    hub, _ = client(lambda request: next(responses), retries=0)
    with pytest.raises(NotFound, match="is the URL a cimhub hub"):
        hub.query("get")
    with pytest.raises(Unauthenticated):
        hub.query("get")
    with pytest.raises(Unavailable, match="502"):
        hub.query("get")
    with pytest.raises(CimhubError, match="without a JSON object"):
        hub.query("get")
    with pytest.raises(Conflict, match="stale"):
        hub.query("get")


def test_no_token_sends_no_authorization_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return error("unauthenticated", "send `Authorization: Bearer <token>`", False, 401)

    hub, _ = client(handler, token=None)
    with pytest.raises(Unauthenticated, match="Bearer"):
        hub.query("get")


def test_refuses_a_websocket_url() -> None:
    with pytest.raises(ValueError, match="expected a hub URL"):
        HttpClient("ws://127.0.0.1:8000/v1/ws")
