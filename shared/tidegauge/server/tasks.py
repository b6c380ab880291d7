"""Guarded background tasks: a failure is logged and retried, cancellation ends them cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


def start_periodic(
    name: str, interval_seconds: float, action: Callable[[], Awaitable[None]]
) -> asyncio.Task[None]:
    """Run ``action`` every ``interval_seconds`` until cancelled; an exception never ends the loop."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("background task %s failed; next attempt in %s s", name, interval_seconds)

    task = asyncio.create_task(loop(), name=name)
    task.add_done_callback(_report_exit)
    return task


def _report_exit(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("background task %s stopped unexpectedly", task.get_name(), exc_info=error)
    else:
        logger.error("background task %s stopped unexpectedly", task.get_name())


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
