"""Rate-limited logging: the first event of a kind is logged, then one line per interval with a count."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 60.0
MAX_KINDS = 10_000


class LogThrottle:
    """``due(kind)`` says whether to log an event of ``kind`` now, and how many were held back since."""

    def __init__(
        self,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._kinds: dict[str, tuple[float, int]] = {}
        """Per kind: when it was last logged, and how many events were held back since."""

    def due(self, kind: str) -> int | None:
        """None: hold this event back (counted). Else log it now, with the returned count held back."""
        now = self._monotonic()
        last = self._kinds.get(kind)
        if last is not None and now - last[0] < self._interval:
            self._kinds[kind] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._kinds) >= MAX_KINDS:
            self._kinds.clear()
        self._kinds[kind] = (now, 0)
        return 0 if last is None else last[1]
