"""What every mutation is made of: its arguments, its context, its outcome and its spec.

A mutation is a pure function `(document, args, context) -> Outcome`; a
`MutationSpec` names it, says how to validate its arguments, which CIM it
targets and who may run it. The mutations themselves live beside this module,
grouped along the CIM Builder's workflow; the registry collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import CimhubError, ErrorCode, InvalidInput, NotFound, from_validation_error
from ..schema import Cim, Id, safe_json


@dataclass(frozen=True)
class MutationContext:
    """Who runs the mutation, when, and under which caller-supplied id."""

    actor: str
    """Who did it, as recorded in the patch log: a user id, or ``service:<name>[/<user id>]``."""
    now: int
    mutation_id: str
    user_id: str | None = None
    """Whose CIM a create makes: the user, or the user a service acts for."""
    past: dict[str, Any] | None = None
    """For mutations with `MutationSpec.past_revision`: the CIM (JSON data) as committed at that revision.

    Read by the engine before the mutation runs.
    """


@dataclass
class Outcome:
    """What a mutation returns: the new document (None: deleted) and a result for the caller."""

    cim: Cim | None
    result: dict[str, Any]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CimArgs(Args):
    cimId: Id


A = TypeVar("A", bound=Args)


Access = Literal["cim", "deal_in_project", "service"]
"""Who may run a mutation (cimhub.server.auth.authorizer enforces it):

* ``cim``: whoever may see the CIM named by ``args.cimId`` (a member of its deal's project).
* ``deal_in_project``: a member of the project owning ``args.dealId``, and that deal
  must belong to ``args.projectId`` (a create).
* ``service``: a service credential only (an import from the legacy tables).
"""


@dataclass(frozen=True)
class MutationSpec(Generic[A]):
    """A named mutation: its argument model, its pure function and who may run it."""

    name: str
    args: type[A]
    run: Callable[[Cim | None, A, MutationContext], Outcome]
    target: Callable[[A, MutationContext], str]
    creates: bool = False
    access: Access = "cim"
    past_revision: Callable[[A], int] | None = None
    """The past revision the engine must read into `MutationContext.past` before running (restoreRevision)."""

    def parse_args(self, raw: Any) -> A:
        """Validate raw JSON arguments; raises InvalidInput naming the bad field."""
        try:
            safe_json(raw)
        except ValueError as exc:
            raise InvalidInput(str(exc), path="args") from None
        try:
            # strict: "1" is not 1 and true is not 1, in nested models too.
            return self.args.model_validate(raw, strict=True)
        except ValidationError as exc:
            raise from_validation_error(exc, prefix="args") from None


def cim_target(args: CimArgs, ctx: MutationContext) -> str:
    """The target of a mutation on an existing CIM: the one its arguments name."""
    return args.cimId


def invalid_transition(message: str, path: str | None = None) -> CimhubError:
    return InvalidInput(message, code=ErrorCode.INVALID_TRANSITION, path=path)


def existing_cim(cim: Cim | None, args: CimArgs) -> Cim:
    """The CIM a mutation edits; raises NotFound when `args.cimId` names none."""
    if cim is None:
        raise NotFound(f"CIM {args.cimId!r} not found", path="args.cimId")
    return cim
