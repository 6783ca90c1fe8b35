"""What a mutation returns, the same over the socket and over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MutationResult:
    """The hub's answer to one mutation.

    `duplicate` is True when the hub had already applied this mutation id and
    returned the first result instead of applying it again.
    """

    result: Any
    cim_id: str | None
    revision: int | None
    duplicate: bool

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> MutationResult:
        return cls(
            result=data.get("result"),
            cim_id=data.get("cimId"),
            revision=data.get("revision"),
            duplicate=bool(data.get("duplicate", False)),
        )
