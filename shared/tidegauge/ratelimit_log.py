"""Rate-limited logging: at most one line per interval for a repeated failure, with a count of the rest.

Used by the server (malformed requests, deadlines, series left out) and the store (invalid stored records).
A hostile client or a backend outage can make the same failure happen thousands of times a second;
logging each one floods the log (and costs CPU). :class:`RateLimitedLog` logs the first occurrence of
a key at once, counts the repeats within ``interval_seconds``, and reports that count on the next line
it lets through (or on :meth:`flush`). Keys are bounded, so distinct keys cannot grow memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    suppressed: int = 0


class RateLimitedLog:
    """Logs through ``logger``, at most once per ``interval_seconds`` per key (the format by default)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_seconds: float = 10.0,
        *,
        max_keys: int = 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_seconds = interval_seconds
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._windows: dict[Hashable, _Window] = {}

    def log(
        self,
        level: int,
        message: str,
        *args: object,
        key: Hashable | None = None,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than an interval ago; True when logged.

        ``exc_info`` (a traceback) is for the server's own faults only, never for a client's bad input.
        """
        if not self.logger.isEnabledFor(level):
            return False
        key = message if key is None else key
        now = self._monotonic()
        window = self._windows.get(key)
        if window is not None and now - window.started < self.interval_seconds:
            window.suppressed += 1
            return False
        if window is None:
            while len(self._windows) >= self._max_keys:
                del self._windows[next(iter(self._windows))]
        else:
            del self._windows[key]
        self._windows[key] = _Window(now)
        if window is not None and window.suppressed:
            self.logger.log(
                level,
                message + " (%d more like it in the last %.0f s)",
                *args,
                window.suppressed,
                now - window.started,
                exc_info=exc_info,
            )
        else:
            self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, message: str, *args: object, key: Hashable | None = None) -> bool:
        return self.log(logging.WARNING, message, *args, key=key)

    def info(self, message: str, *args: object, key: Hashable | None = None) -> bool:
        return self.log(logging.INFO, message, *args, key=key)

    def error(
        self,
        message: str,
        *args: object,
        key: Hashable | None = None,
        exc_info: BaseException | None = None,
    ) -> bool:
        return self.log(logging.ERROR, message, *args, key=key, exc_info=exc_info)

    def flush(self, level: int = logging.WARNING) -> None:
        """Report the counts still held (e.g. at shutdown or from a periodic task) and forget them."""
        now = self._monotonic()
        for key, window in list(self._windows.items()):
            if window.suppressed:
                self.logger.log(
                    level,
                    "%s: %d more in the last %.0f s",
                    key,
                    window.suppressed,
                    now - window.started,
                )
        self._windows.clear()
