"""`cimhub`: run the hub, watch CIMs change live, read and mutate them from a terminal.

Each command is a thin shell around HttpClient (one request) or Client (the
live view); this module only parses arguments, prints, and maps errors to the
documented exit codes. docs/cli.md has examples.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
import orjson

from cimhub.protocol.errors import AccessDenied, CimhubError, Unauthenticated

from . import render
from .client import Client
from .errors import HubUnreachable
from .events import Event
from .http import HttpClient
from .transport import ws_url

EXIT_OK = 0
EXIT_HUB_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4

EPILOG = """\b
Exit codes:
  0  success
  1  the hub answered with an error (not found, invalid arguments, conflict...)
  2  usage error (unknown option, bad --args JSON...)
  3  the hub could not be reached
  4  authentication or access refused (missing, expired or invalid token)
"""

F = TypeVar("F", bound=Callable[..., Any])

NO_TOKEN_HINT = "pass --token or set CIMHUB_TOKEN (dev mode: export CIMHUB_TOKEN=$(cimhub token --user <id>))"


def exit_code(error: CimhubError) -> int:
    if isinstance(error, HubUnreachable):
        return EXIT_UNREACHABLE
    if isinstance(error, Unauthenticated | AccessDenied):
        return EXIT_AUTH
    return EXIT_HUB_ERROR


def describe(error: CimhubError, url: str) -> str:
    """The one-line message for an error, with a hint about what to do next."""
    where = f" (at {error.path})" if error.path else ""
    text = f"error: {error.code.value}: {error.message}{where}"
    if isinstance(error, HubUnreachable):
        text += f"\nhint: is the hub running at {url}? Start one with `cimhub serve --dev`, or pass --url."
    elif isinstance(error, Unauthenticated):
        text += f"\nhint: {NO_TOKEN_HINT}"
    return text


class CimhubGroup(click.Group):
    """Turns the hub's errors into a readable line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CimhubError as exc:
            url = ctx.obj.url if isinstance(ctx.obj, Hub) else ""
            click.echo(describe(exc, url), err=True)
            ctx.exit(exit_code(exc))


@dataclass
class Hub:
    """Where the hub is and who we are, from the global options."""

    url: str
    token: str | None
    act_as: str | None

    def http(self) -> HttpClient:
        return HttpClient(http_base(self.url), self.require_token(), act_as=self.act_as)

    def require_token(self) -> str:
        if not self.token:
            raise Unauthenticated(f"no token: {NO_TOKEN_HINT}")
        return self.token


def http_base(url: str) -> str:
    """The HTTP base URL of a hub given as http(s):// or as its ws(s):// socket URL."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.removesuffix("/v1/ws").rstrip("/")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def parse_args(text: str | None, file: IO[str] | None) -> dict[str, Any]:
    """Mutation or query arguments from --args JSON, --args - (stdin) or --args-file."""
    if text is not None and file is not None:
        raise click.UsageError("give --args or --args-file, not both")
    if file is None and text is None:
        return {}
    hint = "--args-file" if file is not None else "--args"
    if file is not None:
        source = file.read()
    elif text == "-":
        source = sys.stdin.read()
    else:
        source = str(text)
    try:
        value = orjson.loads(source)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint=hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter(
            f'must be a JSON object such as \'{{"cimId": "..."}}\', got {type(value).__name__}', param_hint=hint
        )
    return value


def echo_json(value: Any) -> None:
    click.echo(render.to_json(value, pretty=True))


def args_options(command: F) -> F:
    """--args and --args-file, shared by `mutate` and `query`."""
    with_file = click.option(
        "--args-file", "args_file", type=click.File("r"), help="Read the arguments (a JSON object) from a file."
    )(command)
    return click.option(
        "--args", "args_text", metavar="JSON", help="Arguments as a JSON object; '-' reads them from stdin."
    )(with_file)


@click.group(cls=CimhubGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="CIMHUB_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    show_envvar=True,
    help="The hub's base URL (a ws:// URL works too).",
)
@click.option("--token", envvar="CIMHUB_TOKEN", show_envvar=True, help="Bearer token (a Supabase JWT or a dev token).")
@click.option("--act-as", envvar="CIMHUB_ACT_AS", metavar="USER", help="With a service credential: act for this user.")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None, act_as: str | None) -> None:
    """Talk to a cimhub hub: watch CIMs change live, read them, run mutations, or run the hub itself."""
    try:
        ws_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    ctx.obj = Hub(url, token, act_as)


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default 8000).")
@click.option("--redis-url", help="Redis to use; without it (and without REDIS_URL) an embedded redis-server runs.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the embedded Redis keeps its data."
)
@click.option(
    "--dev/--no-dev", default=None, help="Development mode: self-minted tokens, loopback only. Never in production."
)
def serve(host: str | None, port: int | None, redis_url: str | None, data_dir: Path | None, dev: bool | None) -> None:
    """Run the hub until Ctrl-C. Flags override the CIMHUB_* environment (docs/operations.md)."""
    from pydantic import ValidationError

    from cimhub.server.main import serve as run_hub
    from cimhub.server.settings import Settings

    given: dict[str, Any] = {"host": host, "port": port, "redis_url": redis_url, "data_dir": data_dir, "dev_mode": dev}
    try:
        settings = Settings(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        raise click.UsageError(f"invalid settings: {exc}") from None
    run_hub(settings)


@cli.command()
@click.option("--user", "user_id", required=True, help="The user id the token is for.")
@click.option("--ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Lifetime in seconds.")
@click.option("--service", is_flag=True, help="Mint a service credential instead of a user token.")
def token(user_id: str, ttl: int, service: bool) -> None:
    """Print a development token that a hub in dev mode accepts (signed with CIMHUB_DEV_SECRET)."""
    from cimhub.server.auth.tokens import SERVICE_ROLE, USER_ROLE, DevTokenIssuer
    from cimhub.server.settings import Settings

    issuer = DevTokenIssuer(Settings().dev_secret)
    click.echo(issuer.mint(user_id, ttl_s=ttl, role=SERVICE_ROLE if service else USER_ROLE))


@cli.command()
@click.argument("cim_id")
@click.pass_obj
def get(hub: Hub, cim_id: str) -> None:
    """Print one CIM document as JSON."""
    with hub.http() as http:
        answer = http.query("get", {"cimId": cim_id})
    echo_json(answer.get("cim", answer) if isinstance(answer, dict) else answer)


@cli.command(name="ls")
@click.option("--deal", "deal_id", metavar="DEAL_ID", help="CIMs of a deal.")
@click.option("--user", "user_id", metavar="USER_ID", help="CIMs of a user (yourself, unless a service).")
@click.option(
    "--status", type=click.Choice(["draft", "in_progress", "complete"]), help="CIMs in a status (services only)."
)
@click.option("--cursor", help="Continue from the nextCursor of a previous page.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Rows per page.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw page ({items, nextCursor}).")
@click.pass_obj
def list_cims(
    hub: Hub,
    deal_id: str | None,
    user_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List CIMs by deal, user or status (exactly one)."""
    chosen = [(name, value) for name, value in (("deal", deal_id), ("user", user_id), ("status", status)) if value]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --deal, --user or --status")
    kind, value = chosen[0]
    name, key = {
        "deal": ("listByDeal", "dealId"),
        "user": ("listByUser", "userId"),
        "status": ("listByStatus", "status"),
    }[kind]
    args: dict[str, Any] = {key: value, "limit": limit}
    if cursor:
        args["cursor"] = cursor
    with hub.http() as http:
        page = http.query(name, args)
    if as_json:
        echo_json(page)
        return
    click.echo(render.cim_table(page.get("items", [])))
    if page.get("nextCursor"):
        click.echo(click.style(f"more: --cursor {page['nextCursor']}", dim=True), err=True)


@cli.command()
@click.argument("name")
@args_options
@click.option("--mutation-id", help="Reuse an id to retry a mutation safely (default: a new uuid4).")
@click.option(
    "--expected-revision", type=click.IntRange(min=0), help="Refuse (conflict) unless the CIM is at this revision."
)
@click.pass_obj
def mutate(
    hub: Hub,
    name: str,
    args_text: str | None,
    args_file: IO[str] | None,
    mutation_id: str | None,
    expected_revision: int | None,
) -> None:
    """Run mutation NAME and print {result, cimId, revision, duplicate}."""
    args = parse_args(args_text, args_file)
    with hub.http() as http:
        outcome = http.mutate(name, args, mutation_id=mutation_id, expected_revision=expected_revision)
    echo_json(
        {
            "result": outcome.result,
            "cimId": outcome.cim_id,
            "revision": outcome.revision,
            "duplicate": outcome.duplicate,
        }
    )


@cli.command()
@click.argument("name")
@args_options
@click.pass_obj
def query(hub: Hub, name: str, args_text: str | None, args_file: IO[str] | None) -> None:
    """Run query NAME and print its result.

    NAME is one of get, listByDeal, listByUser, listByStatus, patches, cimAt, cimDiff, cimHistory, messages.
    """
    args = parse_args(args_text, args_file)
    with hub.http() as http:
        echo_json(http.query(name, args))


@cli.command()
@click.argument("cim_id")
@click.option("--from", "from_revision", type=click.IntRange(min=0), required=True, help="Patches after this revision.")
@click.option("--to", "to_revision", type=click.IntRange(min=0), help="Up to this revision (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per patch, one per line.")
@click.pass_obj
def patches(hub: Hub, cim_id: str, from_revision: int, to_revision: int | None, as_json: bool) -> None:
    """Print a CIM's patch log after revision --from."""
    args: dict[str, Any] = {"cimId": cim_id, "fromRevision": from_revision}
    if to_revision is not None:
        args["toRevision"] = to_revision
    with hub.http() as http:
        answer = http.query("patches", args)
    if answer.get("truncated"):
        click.echo(f"warning: the patch log no longer reaches back to revision {from_revision}", err=True)
    for entry in answer.get("patches", []):
        if as_json:
            click.echo(render.to_json(entry))
        else:
            click.echo(
                render.patch_line(
                    entry.get("rev", 0),
                    entry.get("ops", []),
                    mutation=entry.get("mutation"),
                    actor=entry.get("actor"),
                    ts=entry.get("ts"),
                    deleted=bool(entry.get("deleted")),
                )
            )


@cli.command()
@click.argument("cim_id")
@click.option(
    "--at", "at_revision", type=click.IntRange(min=1), metavar="R", help="Print the CIM as it was at revision R."
)
@click.option(
    "--diff", "diff_range", metavar="A..B", help="What changed after revision A up to B (B left out: up to now)."
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Revisions listed.")
@click.option("--json", "as_json", is_flag=True, help="Print the hub's answer as JSON.")
@click.pass_obj
def history(hub: Hub, cim_id: str, at_revision: int | None, diff_range: str | None, limit: int, as_json: bool) -> None:
    """A CIM's past: its revisions (who changed what), the CIM at revision R, or a coloured diff A..B.

    Restore one with `cimhub mutate restoreRevision --args '{"cimId": ..., "revision": R}'`.
    """
    from .history_view import diff_lines, parse_range, revision_lines

    if at_revision is not None and diff_range is not None:
        raise click.UsageError("give --at or --diff, not both")
    with hub.http() as http:
        if at_revision is not None:
            answer = http.query("cimAt", {"cimId": cim_id, "revision": at_revision})
            echo_json(answer if as_json else answer["cim"])
            return
        if diff_range is None:
            answer = http.query("cimHistory", {"cimId": cim_id, "limit": limit})
            lines = [render.to_json(answer)] if as_json else list(revision_lines(answer))
        else:
            try:
                start, end = parse_range(diff_range)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--diff") from None
            args: dict[str, Any] = {"cimId": cim_id, "from": start}
            if end is not None:
                args["to"] = end
            answer = http.query("cimDiff", args)
            if as_json:
                lines = [render.to_json(answer)]
            else:
                before = http.query("cimAt", {"cimId": cim_id, "revision": start})["cim"] if start > 0 else None
                lines = list(diff_lines(before, answer["patches"]))
                if answer.get("truncated"):
                    lines.append(
                        click.style(f"(stopped at r{answer['to']}: ask again with --diff {answer['to']}..)", dim=True)
                    )
    for line in lines:
        click.echo(line)


@cli.command()
@click.argument("cim_id", required=False)
@click.option("--topic", metavar="TOPIC", help="Watch another topic instead: deal:<id> or messages:<id>.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line: snapshot, patch and connection events."
)
@click.option("--codec", type=click.Choice(["json", "msgpack"]), default="json", show_default=True)
@click.option("--present", is_flag=True, help="Show yourself to others on the CIM as viewing it while you watch.")
@click.pass_obj
def subscribe(hub: Hub, cim_id: str | None, topic: str | None, as_json: bool, codec: str, present: bool) -> None:
    """Watch a CIM change live until Ctrl-C: every patch as it arrives, who joins and leaves, reconnects included."""
    if (cim_id is None) == (topic is None):
        raise click.UsageError("give a CIM_ID or --topic, not both")
    if present and cim_id is None:
        raise click.UsageError("--present needs a CIM_ID")
    try:
        asyncio.run(watch(hub, topic or f"cim:{cim_id}", as_json=as_json, codec=codec, present=present))
    except KeyboardInterrupt:
        pass


async def watch_presence(client: Client, cim_id: str, *, as_json: bool) -> asyncio.Task[None]:
    """Print who is on the CIM now, then each join, update and leave, until cancelled."""
    from .presence_view import members_line, presence_line, presence_record

    people = await client.subscribe(f"presence:{cim_id}")
    if not as_json:
        click.echo(members_line(people.document or {}))
    elif people.document:
        click.echo(
            render.to_json({"type": "presence", "topic": people.topic, "event": "members", "members": people.document})
        )

    async def follow() -> None:
        before = people.document or {}
        async for change in people:
            click.echo(render.to_json(presence_record(change, before)) if as_json else presence_line(change, before))
            before = change.document or {}

    return asyncio.create_task(follow())


async def watch(hub: Hub, topic: str, *, as_json: bool, codec: str, present: bool = False) -> None:
    def show_event(event: Event) -> None:
        click.echo(render.to_json(render.event_record(event)) if as_json else render.event_line(event))

    token = hub.require_token()
    async with Client(
        hub.url,
        token=token,
        act_as=hub.act_as,
        codec="msgpack" if codec == "msgpack" else "json",
        on_event=show_event,
    ) as client:
        sub = await client.subscribe(topic)
        if as_json:
            click.echo(
                render.to_json(
                    {
                        "type": "snapshot",
                        "topic": topic,
                        "revision": sub.revision,
                        "epoch": sub.epoch,
                        "reset": False,
                        "document": sub.document,
                    }
                )
            )
        else:
            click.echo(
                f"watching {click.style(topic, bold=True)} at r{sub.revision}: {render.document_summary(sub.document)}"
            )
        kind, _, ident = topic.partition(":")
        people = await watch_presence(client, ident, as_json=as_json) if kind == "cim" else None
        if present:
            await client.set_presence(ident, {"activity": "viewing"})
        try:
            async for change in sub:
                click.echo(render.to_json(render.change_record(change)) if as_json else render.change_line(change))
        finally:
            if people is not None:
                people.cancel()
    if not as_json:
        click.echo(f"{topic}: subscription ended")


def main(argv: list[str] | None = None) -> None:
    """The `cimhub` console script; exits with one of the EXIT_* codes."""
    cli.main(args=argv, prog_name="cimhub")


@cli.command(name="service-key")
def service_key() -> None:
    """Print a new hub service key (cimhub_sk_...) for one server-side agent.

    Add it to the hub's CIMHUB_SERVICE_KEYS (a JSON list) and give it to that
    agent as its token; with --act-as the agent acts for a user.
    """
    from cimhub.server.auth.tokens import new_service_key

    click.echo(new_service_key())


def _register_extra_commands() -> None:
    # Imported late: the agent pulls in LangGraph, the migration supabase-py.
    from .agent import agent_command
    from .migrate import migrate_legacy

    cli.add_command(agent_command)
    cli.add_command(migrate_legacy)


_register_extra_commands()
