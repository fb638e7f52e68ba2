"""Logging: every line carries the id of the request or socket it belongs to (``-`` for the
server's own lines), as text or as one JSON object per line (``--log-format json``, for log
collectors); API keys in a query never reach the output (``RedactKeys``).

The id lives in a context variable: the gate sets one per HTTP request and per socket, the
native socket replaces it with its session id (the ``session_id`` of its ``ready`` event), and
tasks started for the request inherit it.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar

import orjson

log_id: ContextVar[str] = ContextVar("orpheus_log_id", default="-")
TEXT_FORMAT = "%(levelname)s:%(name)s:[%(log_id)s] %(message)s"
SECRET_IN_QUERY = re.compile(r"((?:api_key|access_token)=)[^&\s\"]+")


class RequestIds(logging.Filter):
    """Adds ``log_id`` to each record, and keeps keys in a query out of the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_id"):
            record.log_id = log_id.get()
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(SECRET_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str):
            record.msg = SECRET_IN_QUERY.sub(r"\1***", record.msg)
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                "logger": record.name, "id": getattr(record, "log_id", "-"),
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: str, fmt: str = "text") -> None:
    """One handler on the root logger, which uvicorn's loggers reach too (``serve`` starts
    uvicorn with ``log_config=None``)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIds())
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
