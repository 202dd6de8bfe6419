"""Structured logging: JSON lines (or key=value text), ids on every line, bank details masked.

``log_context(item_id=..., job_id=...)`` stamps every line logged inside it, in any module,
so a line about queue item 42 says so without each call passing it.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from app.redaction import redact

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "paybridge_log_context", default={}  # noqa: B039 - never mutated, replaced whole
)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process
        for key, value in _context.get().items():
            setattr(record, key, value)
        # Mask after formatting args, so a detail passed as an argument is caught too.
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        return True


class TextFormatter(logging.Formatter):
    _skip = set(logging.makeLogRecord({}).__dict__) | {"message", "process_name", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        base = (f"{self.formatTime(record)} level={record.levelname} "
                f"proc={getattr(record, 'process_name', '-')} logger={record.name} "
                f"msg={record.getMessage()!r}")
        extras = " ".join(
            f"{k}={redact(str(v))}" for k, v in record.__dict__.items() if k not in self._skip
        )
        text = f"{base} {extras}".rstrip()
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(process: str, fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(process))
    if fmt == "json":
        handler.setFormatter(RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(process_name)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        ))
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
