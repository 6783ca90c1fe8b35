"""Plans: saver operations written once, without I/O, run by the sync and async drivers.

A plan is a generator. It yields `Run` when it needs Redis (the driver sends
back the replies, in order) and `Emit` when it has a result for the caller (the
driver sends back an empty list). So the logic of list, delete, copy and prune
exists once, and the tests can step through it without a server::

    plan = saver._plan_list(config)
    step = next(plan)            # Run([...])
    step = plan.send(replies)    # Emit(tuple) or another Run
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langgraph.checkpoint.base import CheckpointTuple

from cimhub.server.checkpoint.scripts import Command

T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """Commands to send in one round trip; `atomic` wraps them in MULTI/EXEC."""

    commands: list[Command] = field(default_factory=list)
    atomic: bool = False


@dataclass(frozen=True)
class Emit:
    """A result for the caller (list yields these one by one)."""

    item: CheckpointTuple


Plan = Generator[Run | Emit, list[Any], T]
