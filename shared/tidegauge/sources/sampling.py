"""When to sample within one invocation: sub-minute rounds while anything moves, one round when quiet.

EventBridge starts a collector once a minute, the HPA reads every 15 s. An invocation therefore takes a
round now and then every ``interval_seconds`` (aligned to its start) while the next round, at its
expected duration, still ends before the deadline. Lambda bills the time between rounds, so SQS rounds
stop early when every queue is quiet: empty, unchanged since the previous sample, and without
activity for ``quiet_period_seconds`` (see :func:`is_quiet`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tidegauge.model import Sample, SeriesKey

LAST_ACTIVE_MARKER = "last_active_at"
"""Store marker: when a source last had messages or changed (Unix seconds)."""


@dataclass(frozen=True, slots=True)
class LoopReport:
    """How an invocation's rounds went; ``stopped`` is ``single``, ``quiet`` or ``deadline``."""

    rounds: int
    stopped: str


def run_rounds(
    take_round: Callable[[int], bool],
    *,
    interval_seconds: float,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    single: bool = False,
) -> LoopReport:
    """Call ``take_round(index)`` now and then on the ``interval_seconds`` grid until it returns False
    (nothing more to watch), or the next round would not finish before ``deadline``.

    The first round always runs. Slots missed because a round overran are skipped, not bunched up.
    """
    start = clock()
    longest = 0.0
    rounds = 0
    while True:
        began = clock()
        wants_more = take_round(rounds)
        finished = clock()
        rounds += 1
        longest = max(longest, finished - began)
        if single:
            return LoopReport(rounds, "single")
        if not wants_more:
            return LoopReport(rounds, "quiet")
        slot = max(rounds, math.ceil((finished - start) / interval_seconds))
        next_at = start + slot * interval_seconds
        if next_at + longest > deadline:
            return LoopReport(rounds, "deadline")
        sleep(max(0.0, next_at - clock()))


def values_by_key(samples: Iterable[Sample]) -> dict[SeriesKey, float]:
    return {sample.key: sample.value for sample in samples}


def is_active(samples: Iterable[Sample], previous: Mapping[SeriesKey, float]) -> bool:
    """True when a queue has messages, or a series is new or differs from the previous sample."""
    return any(sample.value != 0 or previous.get(sample.key) != sample.value for sample in samples)


def is_quiet(*, active: bool, last_active_at: float | None, now: float, quiet_period_seconds: float) -> bool:
    """Quiet: nothing active now, and nothing active for at least ``quiet_period_seconds``."""
    if active:
        return False
    return last_active_at is None or now - last_active_at >= quiet_period_seconds
