"""Logging: every line carries the id of the request or socket it belongs to (``-`` for the
server's own lines), as text or as one JSON object per line (``--log-format json``, for log
collectors); API keys in a query never reach the output (``RequestIds``); and one record is
one line, whatever a client put in it: a path with ``%0a`` or ``%1b`` can't forge a line or
write a terminal escape (``TextLines``, ``JsonLines``).

The id lives in a context variable: the gate sets one per HTTP request and per socket, the
native socket replaces it with its session id (the ``session_id`` of its ``ready`` event), and
tasks started for the request inherit it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import unquote_plus

import orjson

log_id: ContextVar[str] = ContextVar("orpheus_log_id", default="-")
TEXT_FORMAT = "%(levelname)s:%(name)s:[%(log_id)s] %(message)s"
# Query parameters that may carry a key: every name auth.py takes (its QUERY_KEYS; a test
# checks) and those other clients use. A name is compared decoded as parse_qs decodes it
# (%-escapes, "+"), so ``?api%5Fkey=KEY``, which authenticates, is hidden too; then in any
# case and with only its letters and digits, so ``api-key`` and ``API_KEY`` are as well.
SECRET_QUERY_NAMES = frozenset({"apikey", "accesstoken", "key", "token", "xiapikey", "xapikey",
                                "auth", "authorization"})
# NAME=VALUE after "?", "&" or a space (or at the start), the value up to the next "&" or space
# (parse_qs splits on "&" alone: a value may hold ";" or quotes).
QUERY_PARAMETER = re.compile(r"(^|[?&\s])([^=&?\s]+)=[^&\s]*")
NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter called ``name`` (as sent, %-escaped) may carry a key."""
    return NOT_ALPHANUMERIC.sub("", unquote_plus(name)).lower() in SECRET_QUERY_NAMES


def hide_keys(text: str) -> str:
    """``text`` with the value of every key-bearing query parameter as ``***``."""

    def hide(match: re.Match[str]) -> str:
        return f"{match[1]}{match[2]}=***" if is_secret_name(match[2]) else match[0]

    return QUERY_PARAMETER.sub(hide, text) if "=" in text else text


def printable(text: str, escape: Callable[[str], str]) -> str:
    """``text`` with each character that isn't printable (line breaks, terminal escapes,
    other controls and separators) replaced by ``escape(character)``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else escape(c) for c in text)


def python_escape(c: str) -> str:
    return c.encode("unicode_escape").decode("ascii")  # \n, \x1b, \u2028


def json_escape(c: str) -> str:
    code = ord(c)
    if code > 0xFFFF:  # JSON spells it as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


class RequestIds(logging.Filter):
    """Adds ``log_id`` to each record, and keeps keys in a query out of the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_id"):
            record.log_id = log_id.get()
        try:
            message = record.getMessage()
        except Exception:  # a bad format: the handler reports it when it formats the record
            return True
        hidden = hide_keys(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


class TextLines(logging.Formatter):
    """``TEXT_FORMAT``, one record a line: what isn't printable is escaped as Python writes it
    (``\\n``, ``\\x1b``). A traceback, appended after, keeps its lines."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record), python_escape)


class JsonLines(logging.Formatter):
    """One JSON object a record, on one line of printable characters."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                "logger": record.name, "id": getattr(record, "log_id", "-"),
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # orjson escapes what JSON must (C0 controls); the rest that isn't printable (DEL, C1
        # controls, U+2028, which splitlines and some terminals break on) as \uXXXX too
        return printable(orjson.dumps(line).decode(), json_escape)


def configure_logging(level: str, fmt: str = "text") -> None:
    """One handler on the root logger, which uvicorn's loggers reach too (``serve`` starts
    uvicorn with ``log_config=None``)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIds())
    handler.setFormatter(JsonLines() if fmt == "json" else TextLines())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
