"""Readiness (can this process serve the API?) and Redis health (can it answer metric requests?).

Readiness is NOT tied to Redis: an unready aggregated server makes its APIService unavailable, which
breaks discovery cluster-wide. It fails only while draining; listening, TLS and the authentication
config are in place before the port opens. A Redis outage is a 503 per metric request instead,
visible as the ``tidegauge_redis_up`` gauge and in the log: one line when it starts, one summary per
interval while it lasts, one line when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

SUMMARY_INTERVAL_SECONDS = 60.0


class Readiness:
    """``problem()`` is None when ready, else a short reason for the ``/readyz`` body."""

    def __init__(self) -> None:
        self.draining = False

    async def problem(self) -> str | None:
        return "shutting down" if self.draining else None


class RedisHealth:
    """Whether Redis answered the last time the server asked; transitions logged, failures summarised."""

    def __init__(
        self,
        *,
        summary_interval_seconds: float = SUMMARY_INTERVAL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.up: bool | None = None
        """None until the first answer or failure."""
        self._interval = summary_interval_seconds
        self._monotonic = monotonic
        self._down_since = 0.0
        self._summarised_at = 0.0
        self._failures = 0
        self._unsummarised = 0

    def succeeded(self) -> None:
        if self.up is False:
            logger.warning(
                "Redis answers again after %.0f s unavailable (%d failed reads)",
                self._monotonic() - self._down_since,
                self._failures,
            )
        elif self.up is None:
            logger.info("Redis answers")
        self.up = True

    def failed(self, error: Exception) -> None:
        now = self._monotonic()
        if self.up is not False:
            self.up = False
            self._down_since = self._summarised_at = now
            self._failures, self._unsummarised = 1, 0
            logger.warning("Redis unavailable, metric requests answer 503 until it answers: %s", error)
            return
        self._failures += 1
        self._unsummarised += 1
        if now - self._summarised_at >= self._interval:
            logger.warning(
                "Redis still unavailable after %.0f s: %d failed reads in the last %.0f s; last error: %s",
                now - self._down_since,
                self._unsummarised,
                now - self._summarised_at,
                error,
            )
            self._summarised_at, self._unsummarised = now, 0
