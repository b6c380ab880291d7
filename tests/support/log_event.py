"""Wait for a log record instead of polling: the in-process server says when a reload took effect."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator


class _Seen(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@contextlib.contextmanager
def log_event(logger_name: str, text: str) -> Iterator[threading.Event]:
    """An event set when ``logger_name`` (or a child) logs a message containing ``text``, at any level.

    The logger is opened to DEBUG for the duration, so the record is made whatever the root level is.
    """
    logger = logging.getLogger(logger_name)
    handler = _Seen(text)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.event
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
