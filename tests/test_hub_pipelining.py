"""One connection pipelining mutations: one CIM's in the order sent, different CIMs' at once.

These drive a Session's dispatch with mutations that finish only when the
test says (no sockets, no Redis): per-CIM order, overlap across CIMs, the
in-flight bound, the waiting bound and the rate limits. test_hub_e2e.py
pipelines mutations of several CIMs through a real hub and Redis.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from cimhub.protocol import frames as f
from cimhub.protocol.codec import JSON
from cimhub.protocol.errors import CimhubError, ErrorCode
from cimhub.protocol.mutations import MUTATIONS, MutationContext, MutationSpec, derived_cim_id, imported_cim_id
from cimhub.server.dispatch import cim_of
from cimhub.server.hub.admission import Admission
from cimhub.server.hub.session import MAX_PENDING_MUTATIONS, Session
from cimhub.server.metrics import Metrics
from cimhub.server.settings import Settings

USER = SimpleNamespace(user_id="user-1", role="authenticated", is_service=False)


# -- which CIM a request changes -----------------------------------------------------------


def test_cim_of_names_the_cim_each_mutation_changes() -> None:
    assert cim_of(USER, "updateSlide", {"cimId": "c1", "slide": {}}, "m1") == "c1"
    assert cim_of(USER, "delete", {"cimId": "c2"}, "m1") == "c2"
    assert cim_of(USER, "addMessage", {"cimId": "c3", "role": "user", "content": "hi"}, "m1") == "c3"
    # A create changes the CIM whose id it derives from its actor and mutation id.
    create = {"dealId": "d1", "projectId": "p1", "title": "Falcon"}
    assert cim_of(USER, "create", create, "m9") == derived_cim_id("user-1", "m9")
    service = SimpleNamespace(user_id="user-1", role="agent", is_service=True)
    assert cim_of(service, "create", create, "m9") == derived_cim_id("service:agent/user-1", "m9")
    assert cim_of(service, "importFromSupabase", {"sourceId": "legacy-7"}, "m1") == imported_cim_id("legacy-7")


@pytest.mark.parametrize("spec", [spec for spec in MUTATIONS.values() if not spec.creates], ids=lambda s: s.name)
def test_every_mutation_that_makes_no_cim_changes_the_one_its_cim_id_names(spec: MutationSpec[Any]) -> None:
    """cim_of reads `cimId` for these without asking the spec: hold each spec's target to that."""
    ctx = MutationContext(actor="user-1", now=0, mutation_id="m1", user_id="user-1")
    assert spec.target(spec.args.model_construct(cimId="c-42"), ctx) == "c-42"


@pytest.mark.parametrize(
    ("name", "args"),
    [("updateState", []), ("updateState", {}), ("updateState", {"cimId": 7}), ("nope", {"x": 1}), ("create", None)],
)
def test_cim_of_gives_one_shared_key_to_requests_it_cannot_place(name: str, args: Any) -> None:
    assert cim_of(USER, name, args, "m1") == ""


# -- a session's lanes, with mutations the test finishes ---------------------------------------


class Socket:
    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Gated:
    """`Requests.mutate` whose calls wait for `finish(mutation_id)`; records what started and what overlapped."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running: Counter[str] = Counter()
        self.most_at_once = 0
        self.same_cim_overlap = False
        self._gates: dict[str, asyncio.Event] = {}
        self._revisions: Counter[str] = Counter()

    def finish(self, *mutation_ids: str) -> None:
        for mutation_id in mutation_ids:
            self._gates.setdefault(mutation_id, asyncio.Event()).set()

    async def mutate(self, identity: Any, name: str, args: Any, mutation_id: str, expected: int | None) -> Any:
        cim = args["cimId"]
        self.started.append(mutation_id)
        self.same_cim_overlap |= self.running[cim] > 0
        self.running[cim] += 1
        self.most_at_once = max(self.most_at_once, sum(self.running.values()))
        try:
            await self._gates.setdefault(mutation_id, asyncio.Event()).wait()
        finally:
            self.running[cim] -= 1
        self._revisions[cim] += 1
        return SimpleNamespace(
            result={"title": args["title"]}, cim_id=cim, revision=self._revisions[cim], duplicate=False
        )


def make_session(requests: Gated, *, in_flight: int = 4, burst: int = 10_000) -> Session:
    settings = SimpleNamespace(
        send_queue_bytes=1 << 24,
        shutdown_grace_s=1.0,
        mutations_per_second=1.0,
        mutation_burst=burst,
        mutations_in_flight=in_flight,
    )
    session = Session(
        Socket(),  # type: ignore[arg-type]
        JSON,
        settings=settings,  # type: ignore[arg-type]
        connections=None,  # type: ignore[arg-type]
        hub=None,  # type: ignore[arg-type]
        requests=requests,  # type: ignore[arg-type]
        verifier=None,  # type: ignore[arg-type]
        metrics=Metrics(),
        admission=Admission(Settings(user_mutations_per_second=1.0, user_mutation_burst=10_000)),
    )
    session.identity = USER
    return session


def mutate(session: Session, cim: str, n: int) -> None:
    """Send mutation `<cim><n>` (its request id and mutation id) on `session`."""
    session._dispatch(
        f.MutateFrame(
            type="mutate",
            id=f"{cim}{n}",
            name="updateState",
            args={"cimId": cim, "title": f"{n}"},
            mutationId=f"{cim}{n}",
        )
    )


def answers(session: Session) -> list[dict[str, Any]]:
    """The frames the session has queued for its client (its sender is not started)."""
    return [JSON.decode(data) for data in session.sender.queue]


async def settle() -> None:
    """Let every runnable task run until all wait on something the test controls."""
    for _ in range(20):
        await asyncio.sleep(0)


def stop(session: Session) -> None:
    for task in session._tasks:
        task.cancel()


async def test_one_cims_mutations_run_in_order_and_other_cims_overlap() -> None:
    gated = Gated()
    session = make_session(gated)
    for n in (1, 2, 3):
        mutate(session, "a", n)
        mutate(session, "b", n)
    await settle()
    # a2 waits behind a1, b2 behind b1; the two CIMs run at once.
    assert gated.started == ["a1", "b1"]
    gated.finish("b1")
    await settle()
    assert gated.started == ["a1", "b1", "b2"]
    gated.finish("b2", "b3")
    await settle()
    assert gated.started == ["a1", "b1", "b2", "b3"]
    gated.finish("a1", "a2", "a3")
    await settle()
    assert gated.started == ["a1", "b1", "b2", "b3", "a2", "a3"]
    assert not gated.same_cim_overlap
    # Answers come back as mutations finish, each named by its request id.
    assert [(a["id"], a["revision"]) for a in answers(session)] == [
        ("b1", 1),
        ("b2", 2),
        ("b3", 3),
        ("a1", 1),
        ("a2", 2),
        ("a3", 3),
    ]
    assert session._lanes == {} and session._mutations_waiting == 0
    stop(session)


async def test_at_most_mutations_in_flight_run_at_once() -> None:
    gated = Gated()
    session = make_session(gated, in_flight=3)
    for cim in "abcdefgh":
        mutate(session, cim, 1)
    await settle()
    assert gated.started == ["a1", "b1", "c1"]
    gated.finish("b1")
    await settle()
    assert gated.started == ["a1", "b1", "c1", "d1"]  # the freed slot goes to the next CIM in line
    gated.finish(*(f"{cim}1" for cim in "abcdefgh"))
    await settle()
    assert sorted(gated.started) == [f"{cim}1" for cim in "abcdefgh"]
    assert gated.most_at_once == 3
    assert len(answers(session)) == 8 and all(a["type"] == "result" for a in answers(session))
    stop(session)


async def test_mutations_past_the_waiting_bound_are_refused_as_overloaded_then_accepted_again() -> None:
    gated = Gated()
    session = make_session(gated)
    for n in range(MAX_PENDING_MUTATIONS):
        mutate(session, f"c{n % 7}-", n)
    mutate(session, "late", 1)
    await settle()
    (refused,) = answers(session)
    assert refused["id"] == "late1" and refused["error"]["code"] == "overloaded"
    assert refused["error"]["retryable"] is True
    assert "late1" not in gated.started
    gated.finish(*(f"c{n % 7}-{n}" for n in range(MAX_PENDING_MUTATIONS)))
    for _ in range(MAX_PENDING_MUTATIONS):  # each lane runs its mutations one after another
        await asyncio.sleep(0)
    await settle()
    assert len(gated.started) == MAX_PENDING_MUTATIONS
    mutate(session, "late", 2)
    gated.finish("late2")
    await settle()
    assert answers(session)[-1]["id"] == "late2" and answers(session)[-1]["type"] == "result"
    stop(session)


async def test_the_connection_rate_limit_applies_to_pipelined_mutations_of_many_cims() -> None:
    gated = Gated()
    session = make_session(gated, burst=5)
    for cim in "abcdefgh":
        mutate(session, cim, 1)
    gated.finish(*(f"{cim}1" for cim in "abcdefgh"))
    await settle()
    limited = [a["id"] for a in answers(session) if a["type"] == "error"]
    assert limited == ["f1", "g1", "h1"]
    assert all(a["error"]["code"] == "rate_limited" for a in answers(session) if a["type"] == "error")
    assert sorted(gated.started) == ["a1", "b1", "c1", "d1", "e1"]  # refused ones never ran
    stop(session)


async def test_a_repeated_mutation_id_waits_for_the_first_to_finish() -> None:
    gated = Gated()
    session = make_session(gated)
    mutate(session, "a", 1)
    mutate(session, "a", 1)  # a retry of the same mutation, sent before the first was answered
    await settle()
    assert gated.started == ["a1"]
    gated.finish("a1")
    await settle()
    assert gated.started == ["a1", "a1"]
    stop(session)


class TwoChecksAtOnce(Gated):
    """Like the access cache with CIMHUB_ACCESS_MAX_CHECKS_PER_USER=2: a third check at once is `rate_limited`."""

    async def mutate(self, identity: Any, name: str, args: Any, mutation_id: str, expected: int | None) -> Any:
        if sum(self.running.values()) >= 2:
            raise CimhubError("over 2 access checks in flight for this user", code=ErrorCode.RATE_LIMITED)
        return await super().mutate(identity, name, args, mutation_id, expected)


async def test_overlapping_mutations_wait_for_the_users_access_checks_instead_of_failing() -> None:
    checks = TwoChecksAtOnce()
    session = make_session(checks, in_flight=8)
    for cim in "abcde":
        mutate(session, cim, 1)
    await settle()
    assert checks.started == ["a1", "b1"]  # the rest were refused by the bound, and wait
    assert answers(session) == []
    checks.finish("a1")
    await settle()
    assert len(checks.started) == 3
    checks.finish(*(f"{cim}1" for cim in "abcde"))
    await settle()
    assert sorted(a["id"] for a in answers(session)) == ["a1", "b1", "c1", "d1", "e1"]
    assert all(a["type"] == "result" for a in answers(session))
    stop(session)


async def test_a_mutation_refused_with_nothing_else_running_is_answered_rate_limited() -> None:
    class Refusing(Gated):
        async def mutate(self, *args: Any) -> Any:
            raise CimhubError("over 4 access checks in flight for this user", code=ErrorCode.RATE_LIMITED)

    session = make_session(Refusing())
    mutate(session, "a", 1)
    await settle()
    (refused,) = answers(session)
    assert refused["id"] == "a1" and refused["error"]["code"] == "rate_limited"
    assert session._lanes == {} and session._mutations_waiting == 0
    stop(session)
