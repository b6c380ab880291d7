"""Readiness: the store answers a ping (result cached briefly) and the server is not shutting down.

Liveness (``/healthz``, ``/livez``) only says the process serves requests; a Redis outage makes the
server not ready, never not alive, so the kubelet does not restart a process that will recover alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from tidegauge.store import StoreError

logger = logging.getLogger(__name__)


class Pinger(Protocol):
    async def ping(self) -> bool: ...


class Readiness:
    """``problem()`` is None when ready, else a short reason for the ``/readyz`` body."""

    def __init__(
        self,
        store: Pinger,
        *,
        cache_seconds: float = 1.0,
        timeout_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        self._checked_at = float("-inf")
        self._store_problem: str | None = None
        self._lock = asyncio.Lock()
        self.draining = False

    async def problem(self) -> str | None:
        if self.draining:
            return "shutting down"
        async with self._lock:
            if self._monotonic() - self._checked_at >= self._cache_seconds:
                self._store_problem = await self._ping()
                self._checked_at = self._monotonic()
        return self._store_problem

    async def _ping(self) -> str | None:
        try:
            await asyncio.wait_for(self._store.ping(), self._timeout)
        except (StoreError, TimeoutError) as error:
            logger.warning("not ready: metrics store unavailable: %s", error or "ping timed out")
            return "metrics store unavailable"
        return None
