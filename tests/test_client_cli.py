"""The `cimhub` command without a hub: argument parsing, exit codes, error messages, output formats."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from cimhub.clients import cli as cli_module
from cimhub.clients import render
from cimhub.clients.cli import cli, http_base, parse_args
from cimhub.clients.events import Connected, Disconnected, Event, Resumed, TokenRefreshed
from cimhub.clients.http import HttpClient
from cimhub.clients.replica import Change


def run(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), input=input, env={"CIMHUB_URL": None, "CIMHUB_TOKEN": None, **(env or {})}
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Route the CLI's HTTP client to a mock that records bodies and answers like the hub."""
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append({"path": request.url.path, "auth": request.headers.get("authorization"), **body})
        if body.get("name") == "missing":
            return httpx.Response(
                404,
                json={
                    "error": {
                        "code": "not_found",
                        "message": "CIM 'x' not found",
                        "retryable": False,
                        "path": "args.cimId",
                    }
                },
            )
        if body.get("name") == "denied":
            return httpx.Response(
                403, json={"error": {"code": "access_denied", "message": "not your deal", "retryable": False}}
            )
        if request.url.path == "/v1/mutate":
            return httpx.Response(
                200, json={"result": {"changed": True}, "cimId": "c1", "revision": 2, "duplicate": False}
            )
        results = {
            "get": {"cim": {"id": "c1", "title": "Acme"}, "revision": 1, "epoch": "e"},
            "listByDeal": {
                "items": [{"id": "c1", "title": "Acme", "status": "draft", "stage": "welcome", "updatedAt": 0}],
                "nextCursor": "n2",
            },
            "patches": {
                "patches": [
                    {
                        "rev": 2,
                        "epoch": "e",
                        "ops": [{"op": "replace", "path": "/stage", "value": "outline"}],
                        "mutation": "navigateToStage",
                        "actor": "u1",
                        "ts": 1,
                    }
                ],
                "truncated": True,
            },
        }
        return httpx.Response(200, json={"result": results.get(body["name"], {"echo": body["args"]})})

    real = HttpClient

    def patched(*args: Any, **kwargs: Any) -> Any:
        return real(*args, transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(cli_module, "HttpClient", patched)
    return bodies


TOKEN = ("--token", "tok")


# -- arguments ---------------------------------------------------------------------


def test_args_from_text_stdin_and_file(tmp_path: Path) -> None:
    assert parse_args('{"cimId": "c1"}', None) == {"cimId": "c1"}
    assert parse_args(None, None) == {}
    path = tmp_path / "args.json"
    path.write_text('{"a": [1]}')
    with path.open() as file:
        assert parse_args(None, file) == {"a": [1]}


def test_mutate_sends_args_and_mutation_id(fake_hub: list[dict[str, Any]]) -> None:
    result = run(
        *TOKEN, "mutate", "navigateToStage", "--args", '{"cimId": "c1", "stage": "outline"}', "--mutation-id", "m-1"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"result": {"changed": True}, "cimId": "c1", "revision": 2, "duplicate": False}
    assert fake_hub[0]["args"] == {"cimId": "c1", "stage": "outline"} and fake_hub[0]["mutationId"] == "m-1"
    assert fake_hub[0]["auth"] == "Bearer tok"


def test_mutate_reads_args_from_stdin(fake_hub: list[dict[str, Any]]) -> None:
    result = run(*TOKEN, "mutate", "delete", "--args", "-", input='{"cimId": "c1"}')
    assert result.exit_code == 0, result.output
    assert fake_hub[0]["args"] == {"cimId": "c1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_args_are_a_usage_error(fake_hub: list[dict[str, Any]], args: str, message: str) -> None:
    result = run(*TOKEN, "mutate", "create", "--args", args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert fake_hub == []


def test_args_and_args_file_together_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{}")
    result = run(*TOKEN, "mutate", "create", "--args", "{}", "--args-file", str(path))
    assert result.exit_code == 2 and "not both" in result.output


def test_ls_needs_exactly_one_filter() -> None:
    assert run(*TOKEN, "ls").exit_code == 2
    assert run(*TOKEN, "ls", "--deal", "d1", "--user", "u1").exit_code == 2


def test_bad_url_is_a_usage_error() -> None:
    result = run("--url", "localhost:8000", *TOKEN, "get", "c1")
    assert result.exit_code == 2 and "--url" in result.output


# -- exit codes and messages -------------------------------------------------------------


def test_hub_error_exit_1_with_a_readable_line(fake_hub: list[dict[str, Any]]) -> None:
    result = run(*TOKEN, "query", "missing", "--args", "{}")
    assert result.exit_code == 1
    assert "error: not_found: CIM 'x' not found (at args.cimId)" in result.output
    assert "Traceback" not in result.output


def test_access_denied_exits_4(fake_hub: list[dict[str, Any]]) -> None:
    assert run(*TOKEN, "query", "denied").exit_code == 4


def test_no_token_exits_4_with_a_hint() -> None:
    result = run("get", "c1")
    assert result.exit_code == 4 and "cimhub token --user" in result.output


def test_unreachable_hub_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cimhub.clients.http.time.sleep", lambda seconds: None)
    url = f"http://127.0.0.1:{closed_port()}"
    result = run("--url", url, *TOKEN, "get", "c1")
    assert result.exit_code == 3, result.output
    assert "cannot reach the hub" in result.output and "cimhub serve" in result.output
    live = run("--url", url, *TOKEN, "subscribe", "c1")
    assert live.exit_code == 3, live.output


def test_subscribe_needs_a_cim_or_a_topic() -> None:
    assert run(*TOKEN, "subscribe").exit_code == 2
    assert run(*TOKEN, "subscribe", "c1", "--topic", "deal:d1").exit_code == 2


# -- commands' output ------------------------------------------------------------------------


def test_get_prints_the_document(fake_hub: list[dict[str, Any]]) -> None:
    result = run(*TOKEN, "get", "c1")
    assert json.loads(result.output) == {"id": "c1", "title": "Acme"}
    assert fake_hub[0]["args"] == {"cimId": "c1"}


def test_ls_prints_a_table_and_the_next_cursor(fake_hub: list[dict[str, Any]]) -> None:
    result = run(*TOKEN, "ls", "--deal", "d1", "--limit", "10")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == ["ID", "TITLE", "STATUS", "STAGE", "UPDATED"]
    assert "Acme" in result.output and "--cursor n2" in result.output
    assert fake_hub[0]["name"] == "listByDeal" and fake_hub[0]["args"] == {"dealId": "d1", "limit": 10}


def test_patches_prints_lines_and_warns_when_truncated(fake_hub: list[dict[str, Any]]) -> None:
    result = run(*TOKEN, "patches", "c1", "--from", "1", "--to", "5")
    assert result.exit_code == 0
    assert "no longer reaches back to revision 1" in result.output
    assert 'r2 navigateToStage by u1: replace /stage "outline"' in result.output
    assert fake_hub[0]["args"] == {"cimId": "c1", "fromRevision": 1, "toRevision": 5}
    as_json = run(*TOKEN, "patches", "c1", "--from", "1", "--json")
    assert json.loads(as_json.output.splitlines()[-1])["rev"] == 2


async def test_token_mints_a_dev_token_the_hub_verifies() -> None:
    from cimhub.server.auth.tokens import TokenVerifier
    from cimhub.server.settings import Settings

    result = run("token", "--user", "u1", "--ttl", "60")
    assert result.exit_code == 0
    verifier = TokenVerifier(dev_secret=Settings().dev_secret)
    identity = await verifier.verify(result.output.strip())
    assert identity.user_id == "u1" and not identity.is_service
    await verifier.aclose()


def test_help_documents_exit_codes() -> None:
    result = run("--help")
    assert "Exit codes" in result.output and "hub could not be reached" in result.output


def test_http_base() -> None:
    assert http_base("ws://127.0.0.1:8000/v1/ws") == "http://127.0.0.1:8000"
    assert http_base("wss://hub.example.com/cimhub/v1/ws") == "https://hub.example.com/cimhub"
    assert http_base("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"


# -- formats ------------------------------------------------------------------------------------


def test_ops_summary_hides_bookkeeping_and_counts_the_rest() -> None:
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/stage", "value": "outline"},
        {"op": "replace", "path": "/revision", "value": 5},
        {"op": "replace", "path": "/updatedAt", "value": 1},
        {"op": "add", "path": "/slides/0", "value": {"id": "s1", "title": "x" * 80}},
        {"op": "remove", "path": "/heroStale"},
        {"op": "add", "path": "/completedStages/1", "value": "outline"},
    ]
    summary = render.summarize_ops(ops)
    assert summary.startswith('replace /stage "outline"; add /slides/0 {"id":"s1"')
    assert "/revision" not in summary and summary.endswith("(+1 more)")
    assert render.summarize_ops([{"op": "replace", "path": "/revision", "value": 2}]) == "replace /revision 2"


def test_change_records_for_jq() -> None:
    patch = Change(
        "cim:c1",
        5,
        "e",
        {"stage": "outline"},
        ops=[{"op": "replace", "path": "/stage", "value": "outline"}],
        mutation="navigateToStage",
        mutation_id="m",
        actor="u1",
        ts=1,
    )
    assert render.change_record(patch) == {
        "type": "patch",
        "topic": "cim:c1",
        "revision": 5,
        "epoch": "e",
        "mutation": "navigateToStage",
        "mutationId": "m",
        "actor": "u1",
        "ts": 1,
        "deleted": False,
        "ops": patch.ops,
    }
    snapshot = Change("cim:c1", 9, "e2", {"stage": "outline"}, snapshot=True, reset=True)
    assert render.change_record(snapshot)["document"] == {"stage": "outline"}
    assert "history lost" in render.change_line(snapshot)


def test_event_lines_and_records() -> None:
    events: list[Event] = [
        Connected("u1", None, True),
        Disconnected("closed", 1012, 1.5),
        Resumed("cim:c1", 3, 7),
        TokenRefreshed(9),
    ]
    assert [render.event_record(e)["type"] for e in events] == [
        "connected",
        "disconnected",
        "resumed",
        "tokenRefreshed",
    ]
    assert "reconnecting in 1.5 s" in render.event_line(events[1])
    assert "(4 missed)" in render.event_line(events[2])
