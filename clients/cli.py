"""`cimhub`: run the hub, watch CIMs change live, read and mutate them from a terminal.

Each command is a thin shell around HttpClient (one request) or Client (the
live view); this module only parses arguments, prints, and maps errors to the
documented exit codes. docs/cli.md has examples.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
import orjson

from cimhub.protocol.errors import AccessDenied, CimhubError, Unauthenticated

from . import config
from .exits import (
    EXIT_AUTH,
    EXIT_HUB_ERROR,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CommandFailed,
    missing_extra,
)

if TYPE_CHECKING:
    import asyncio

    from .client import Client
    from .events import Event
    from .http import HttpClient

# The module imports only click, orjson and the standard library: every other
# import (the clients, websockets, httpx, the hub, LangGraph) happens inside the
# command that needs it, so `cimhub --help` answers at once.

EPILOG = """\b
Exit codes:
  0  success
  1  the hub answered with an error (not found, invalid arguments, conflict...)
  2  usage error (unknown option, bad --args JSON, a missing extra...)
  3  the hub (or Redis, for serve and agent) could not be reached
  4  authentication or access refused (missing, expired or invalid token)
"""

F = TypeVar("F", bound=Callable[..., Any])

NO_TOKEN_HINT = "pass --token or set CIMHUB_TOKEN (dev mode: export CIMHUB_TOKEN=$(cimhub token --user <id>))"

LAZY_COMMANDS = {
    # name: (module, attribute, the short help `cimhub --help` shows without importing the module)
    "admin": (
        "cimhub.clients.admin",
        "admin",
        "server",
        "Operator commands on the hub's Redis (no hub needed).",
    ),
    "agent": (
        "cimhub.clients.agent",
        "agent_command",
        "agent",
        "Run the offline CIM agent against the hub: it builds a CIM step by step.",
    ),
    "migrate-legacy": (
        "cimhub.clients.migrate",
        "migrate_legacy",
        "server",
        "Import the legacy Supabase `cims` table into the hub; safe to run again.",
    ),
}
"""Commands whose modules pull in large libraries (LangGraph, supabase-py), imported only when run."""


def exit_code(error: CimhubError) -> int:
    from .errors import HubUnreachable

    if isinstance(error, HubUnreachable):
        return EXIT_UNREACHABLE
    if isinstance(error, Unauthenticated | AccessDenied):
        return EXIT_AUTH
    return EXIT_HUB_ERROR


def describe(error: CimhubError, url: str) -> str:
    """The one-line message for an error, with a hint about what to do next."""
    from .errors import HubUnreachable

    where = f" (at {error.path})" if error.path else ""
    text = f"error: {error.code.value}: {error.message}{where}"
    if isinstance(error, HubUnreachable):
        text += f"\nhint: is the hub running at {url}? Start one with `cimhub serve --dev`, or pass --url."
    elif isinstance(error, Unauthenticated):
        text += f"\nhint: {NO_TOKEN_HINT}"
    return text


class CimhubGroup(click.Group):
    """Turns the hub's errors into a readable line and an exit code, never a traceback; loads heavy commands late."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CimhubError as exc:
            url = ctx.obj.url if isinstance(ctx.obj, Hub) else ""
            click.echo(describe(exc, url), err=True)
            ctx.exit(exit_code(exc))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, attribute, extra, _ = LAZY_COMMANDS[cmd_name]
            try:
                command = getattr(importlib.import_module(module), attribute)
            except ModuleNotFoundError as exc:
                raise missing_extra(cmd_name, extra, exc) from None
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with the lazy commands' help taken from LAZY_COMMANDS instead of importing them."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                stand_in = click.Command(name, help=LAZY_COMMANDS[name][3])  # the same truncation as click's
                rows.append((name, stand_in.get_short_help_str(limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@dataclass
class Hub:
    """Where the hub is and who we are, from the global options."""

    url: str
    token: str | None
    act_as: str | None

    def http(self) -> HttpClient:
        from .http import HttpClient

        return HttpClient(config.http_base(self.url), self.require_token(), act_as=self.act_as)

    def require_token(self) -> str:
        if not self.token:
            raise Unauthenticated(f"no token: {NO_TOKEN_HINT}")
        return self.token


http_base = config.http_base


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
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


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
    default=config.hub_url,
    show_default="$CIMHUB_URL, else http://127.0.0.1:$CIMHUB_PORT (8000)",
    help="The hub's base URL (a ws:// URL works too).",
)
@click.option("--token", envvar="CIMHUB_TOKEN", show_envvar=True, help="Bearer token (a Supabase JWT or a dev token).")
@click.option("--act-as", envvar="CIMHUB_ACT_AS", metavar="USER", help="With a service credential: act for this user.")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None, act_as: str | None) -> None:
    """Talk to a cimhub hub: watch CIMs change live, read them, run mutations, or run the hub itself."""
    try:
        config.ws_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    ctx.obj = Hub(url, token, act_as)


def hub_settings(command: str, **given: Any) -> Any:
    """The hub's Settings: the given flags over the CIMHUB_* environment; a bad value is one usage line."""
    try:
        from pydantic import ValidationError

        from cimhub.server.settings import Settings
    except ModuleNotFoundError as exc:
        raise missing_extra(command, "server", exc) from None
    try:
        return Settings(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise CommandFailed(f"invalid settings: {problems}", EXIT_USAGE) from None


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1; CIMHUB_HOST).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default 8000; CIMHUB_PORT).")
@click.option("--redis-url", help="Redis to use (REDIS_URL); without it an embedded redis-server runs.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded Redis keeps its data (default .data; CIMHUB_DATA_DIR).",
)
@click.option(
    "--dev/--no-dev",
    default=None,
    help="Development mode: self-minted tokens, loopback only. Never in production (CIMHUB_DEV_MODE).",
)
def serve(host: str | None, port: int | None, redis_url: str | None, data_dir: Path | None, dev: bool | None) -> None:
    """Run the hub until Ctrl-C. Flags override the CIMHUB_* environment (docs/operations.md).

    Without Supabase or a database configured, pass --dev. A start-up failure
    (busy port, no credentials, Redis out of reach) is one line and exit 1, 2 or 3.
    """
    settings = hub_settings("serve", host=host, port=port, redis_url=redis_url, data_dir=data_dir, dev_mode=dev)
    from cimhub.server.main import ServeError
    from cimhub.server.main import serve as run_hub

    try:
        run_hub(settings)
    except ServeError as exc:
        raise CommandFailed(str(exc), exc.exit_code) from None


@cli.command()
@click.option("--user", "user_id", required=True, help="The user id the token is for.")
@click.option("--ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Lifetime in seconds.")
@click.option("--service", is_flag=True, help="Mint a service credential instead of a user token.")
def token(user_id: str, ttl: int, service: bool) -> None:
    """Print a development token that a hub in dev mode accepts (signed with CIMHUB_DEV_SECRET)."""
    settings = hub_settings("token")
    try:
        from cimhub.server.auth.tokens import SERVICE_ROLE, USER_ROLE, DevTokenIssuer
    except ModuleNotFoundError as exc:
        raise missing_extra("token", "server", exc) from None
    issuer = DevTokenIssuer(settings.dev_secret)
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
    from . import render

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
    from . import render

    for entry in answer.get("patches", []):
        if as_json:
            click.echo(render.to_json(render.log_record(cim_id, entry)))
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
    from . import render
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
    import asyncio

    try:
        asyncio.run(watch_until_stopped(hub, topic or f"cim:{cim_id}", as_json=as_json, codec=codec, present=present))
    except KeyboardInterrupt:  # a Ctrl-C before the loop took the signal over
        pass


async def watch_until_stopped(hub: Hub, topic: str, *, as_json: bool, codec: str, present: bool) -> None:
    """`watch` until it ends or Ctrl-C / SIGTERM arrives, then a quiet exit 0.

    The signal sets an event that this function waits on beside the watch,
    instead of cancelling the main task and relying on that cancellation to
    travel through the client's tasks: the exit no longer depends on where the
    signal lands, which made Ctrl-C slow to take on a loaded machine.
    """
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watching = asyncio.create_task(watch(hub, topic, as_json=as_json, codec=codec, present=present))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if watching.done():
        watching.result()  # the hub's error, if any, becomes the exit code
        return
    watching.cancel()  # closes the client: the connection is closed with a bounded close handshake
    await asyncio.wait({watching}, timeout=10)


async def watch_presence(client: Client, cim_id: str, *, as_json: bool) -> asyncio.Task[None]:
    """Print who is on the CIM now, then each join, update and leave, until cancelled."""
    import asyncio

    from . import render
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
    from . import render
    from .client import Client

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
            at = f" at r{sub.revision}" if sub.revision else ""  # deal: topics have no revision
            click.echo(f"watching {click.style(topic, bold=True)}{at}: {render.document_summary(sub.document)}")
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


@cli.command(name="service-key")
def service_key() -> None:
    """Print a new hub service key (cimhub_sk_...) for one server-side agent.

    Add it to the hub's CIMHUB_SERVICE_KEYS (a JSON list) and give it to that
    agent as its token; with --act-as the agent acts for a user.
    """
    try:
        from cimhub.server.auth.tokens import new_service_key
    except ModuleNotFoundError as exc:
        raise missing_extra("service-key", "server", exc) from None
    click.echo(new_service_key())


def run(command: click.Command, argv: list[str] | None, prog_name: str) -> None:
    """Run `command` as a program: every failure one line `error: ...` and an exit code, never a traceback."""
    try:
        result = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else None
        hint = f" (see `{where} --help`)" if where else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(result if isinstance(result, int) else 0)


def main(argv: list[str] | None = None) -> None:
    """The `cimhub` console script; exits with one of the EXIT_* codes (clients/exits.py)."""
    run(cli, argv, "cimhub")
