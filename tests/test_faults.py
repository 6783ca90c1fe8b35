"""Failures inside the hub reach clients as structured, retryable errors, never as tracebacks."""

from __future__ import annotations

import uuid

import httpx
import redis.exceptions
from conftest import RedisServer
from hubproc import start_hub

from cimhub.protocol.errors import ErrorCode, NotFound
from cimhub.server.faults import client_error


def test_redis_failures_are_unavailable_and_retryable() -> None:
    error = client_error(redis.exceptions.ConnectionError("refused"), "running a query")
    assert (error.code, error.retryable) == (ErrorCode.UNAVAILABLE, True)


def test_bugs_are_internal_without_their_details() -> None:
    error = client_error(KeyError("secret-internal-name"), "running a query")
    assert (error.code, error.retryable) == (ErrorCode.INTERNAL, True)
    assert "secret-internal-name" not in error.message


def test_client_errors_pass_through_unchanged() -> None:
    original = NotFound("CIM 'x' not found")
    assert client_error(original, "anything") is original


def test_http_calls_during_a_redis_outage_get_structured_503s(private_redis: RedisServer) -> None:
    with start_hub(private_redis.url, f"t{uuid.uuid4().hex[:8]}") as hub:
        headers = {"authorization": f"Bearer {hub.token('u1')}"}
        with httpx.Client(base_url=hub.url, headers=headers, timeout=20) as http:
            created = http.post(
                "/v1/mutate",
                json={
                    "name": "create",
                    "args": {"dealId": "d1", "projectId": "p1", "title": "T"},
                    "mutationId": "c1",
                },
            )
            cim = created.json()["cimId"]
            private_redis.stop()
            try:
                for path, body in (
                    ("/v1/query", {"name": "get", "args": {"cimId": cim}}),
                    ("/v1/mutate", {"name": "updateState", "args": {"cimId": cim, "title": "x"}, "mutationId": "u1"}),
                ):
                    response = http.post(path, json=body)
                    assert response.status_code == 503, response.text
                    error = response.json()["error"]
                    assert error["code"] == "unavailable" and error["retryable"] is True
                    assert "Traceback" not in response.text
            finally:
                private_redis.start()
            retried = http.post(
                "/v1/mutate",
                json={
                    "name": "updateState",
                    "args": {"cimId": cim, "title": "x"},
                    "mutationId": "u1",
                },
            )
            assert retried.status_code == 200 and retried.json()["revision"] == 2
