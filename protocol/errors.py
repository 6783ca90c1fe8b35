"""Errors a client can see: one root, stable codes, a `retryable` flag.

Hierarchy::

    CimhubError                 code, message, retryable, path
     ├── InvalidInput          the caller's input is wrong; retrying the same input fails again
     ├── NotFound              the CIM does not exist, or the caller may not know it does
     ├── Conflict              expectedRevision was stale, or a mutation id was reused
     ├── AccessDenied / Unauthenticated
     └── Unavailable           Redis or a dependency is down; retry with the same mutation id

Every error crosses the wire as ``{"code", "message", "retryable", "path"}``; the
table of codes is in docs/protocol.md. A code never changes meaning once shipped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict


class ErrorCode(StrEnum):
    """Stable error codes. The value is what goes on the wire."""

    BAD_FRAME = "bad_frame"
    INVALID_ARGS = "invalid_args"
    UNKNOWN_MUTATION = "unknown_mutation"
    UNKNOWN_QUERY = "unknown_query"
    UNKNOWN_TOPIC = "unknown_topic"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    MUTATION_ID_REUSED = "mutation_id_reused"
    INVALID_TRANSITION = "invalid_transition"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    RATE_LIMITED = "rate_limited"
    UNAUTHENTICATED = "unauthenticated"
    TOKEN_EXPIRED = "token_expired"
    ACCESS_DENIED = "access_denied"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


# Whether the same request may succeed if sent again unchanged (for a mutation:
# with the same mutation id, which keeps it exactly-once).
RETRYABLE: dict[ErrorCode, bool] = {
    ErrorCode.BAD_FRAME: False,
    ErrorCode.INVALID_ARGS: False,
    ErrorCode.UNKNOWN_MUTATION: False,
    ErrorCode.UNKNOWN_QUERY: False,
    ErrorCode.UNKNOWN_TOPIC: False,
    ErrorCode.NOT_FOUND: False,
    ErrorCode.CONFLICT: False,
    ErrorCode.MUTATION_ID_REUSED: False,
    ErrorCode.INVALID_TRANSITION: False,
    ErrorCode.PAYLOAD_TOO_LARGE: False,
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: False,
    ErrorCode.RATE_LIMITED: True,
    ErrorCode.UNAUTHENTICATED: False,
    ErrorCode.TOKEN_EXPIRED: True,
    ErrorCode.ACCESS_DENIED: False,
    ErrorCode.OVERLOADED: True,
    ErrorCode.UNAVAILABLE: True,
    ErrorCode.INTERNAL: True,
}


class WireErrorOut(TypedDict):
    """An error as the hub sends it (cimhub.protocol.frames.WireError is the model that checks it)."""

    code: str
    message: str
    retryable: bool
    path: NotRequired[str]


class CimhubError(Exception):
    """Root of every error a client can see."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        path: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.path = path
        self.retryable = RETRYABLE[self.code] if retryable is None else retryable

    def to_wire(self) -> WireErrorOut:
        """The error as it crosses the wire (the `error` field of a frame)."""
        wire: WireErrorOut = {
            "code": self.code.value,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.path is not None:
            wire["path"] = self.path
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> CimhubError:
        """Rebuild an error received from the hub, as its most specific class."""
        try:
            code = ErrorCode(wire.get("code", "internal"))
        except ValueError:
            code = ErrorCode.INTERNAL
        klass = _CLASS_BY_CODE.get(code, CimhubError)
        return klass(
            str(wire.get("message", "")),
            code=code,
            path=wire.get("path"),
            retryable=bool(wire.get("retryable", RETRYABLE[code])),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r})"


class InvalidInput(CimhubError):
    code = ErrorCode.INVALID_ARGS


class NotFound(CimhubError):
    code = ErrorCode.NOT_FOUND


class Conflict(CimhubError):
    code = ErrorCode.CONFLICT


class AccessDenied(CimhubError):
    code = ErrorCode.ACCESS_DENIED


class Unauthenticated(CimhubError):
    code = ErrorCode.UNAUTHENTICATED


class Unavailable(CimhubError):
    code = ErrorCode.UNAVAILABLE


_CLASS_BY_CODE: dict[ErrorCode, type[CimhubError]] = {
    ErrorCode.BAD_FRAME: InvalidInput,
    ErrorCode.INVALID_ARGS: InvalidInput,
    ErrorCode.UNKNOWN_MUTATION: InvalidInput,
    ErrorCode.UNKNOWN_QUERY: InvalidInput,
    ErrorCode.UNKNOWN_TOPIC: InvalidInput,
    ErrorCode.PAYLOAD_TOO_LARGE: InvalidInput,
    ErrorCode.INVALID_TRANSITION: InvalidInput,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.CONFLICT: Conflict,
    ErrorCode.MUTATION_ID_REUSED: Conflict,
    ErrorCode.ACCESS_DENIED: AccessDenied,
    ErrorCode.UNAUTHENTICATED: Unauthenticated,
    ErrorCode.TOKEN_EXPIRED: Unauthenticated,
    ErrorCode.UNAVAILABLE: Unavailable,
    ErrorCode.OVERLOADED: Unavailable,
    ErrorCode.RATE_LIMITED: Unavailable,
}


def from_validation_error(exc: Any, *, prefix: str = "", code: ErrorCode = ErrorCode.INVALID_ARGS) -> InvalidInput:
    """Turn a pydantic ValidationError into one InvalidInput naming the first bad field."""
    errors = exc.errors(include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidInput(f"{path or 'input'}: {first.get('msg', 'invalid')}{more}", code=code, path=path or None)
