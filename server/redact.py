"""Credentials never reach a log line: a logging filter on every handler of the hub.

Clients may put a token where it does not belong (a query string, a header
echoed in an error); uvicorn's access log and its WebSocket log print the
request path *with* the query string. This filter, installed on the handlers
(so it sees records of every logger, uvicorn's included), rewrites each
record before it is formatted:

* query strings are dropped from anything that looks like a request path;
* JWTs (``eyJ...``), Supabase secret keys (``sb_secret_...``) and hub service
  keys (``cimhub_sk_...``) are replaced by ``[redacted]`` wherever they occur.

Hand-written because the logging libraries on PyPI that redact (e.g.
logredactor) are unmaintained, and the patterns are the hub's own.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_SECRET = re.compile(
    r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*\.?[A-Za-z0-9_\-]*"  # a JWT (or its first two parts)
    r"|sb_secret_[A-Za-z0-9_\-]+|sb_publishable_[A-Za-z0-9_\-]+|cimhub_sk_[A-Za-z0-9_\-]+"
)
# "/path?query" (as in `"GET /v1/ws?token=... HTTP/1.1"`): keep the path, drop the query.
_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")


def redact(text: str) -> str:
    """`text` without query strings and credentials."""
    return _SECRET.sub(REDACTED, _QUERY.sub(r"\1?" + REDACTED, text))


class RedactingFilter(logging.Filter):
    """Rewrites the message and arguments of every record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Formatted here so the traceback's text is redacted too (formatters reuse exc_text).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install(logger_names: tuple[str, ...] = ("", "uvicorn", "uvicorn.access", "uvicorn.error")) -> None:
    """Add the filter to every handler of these loggers (the root logger and uvicorn's)."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
