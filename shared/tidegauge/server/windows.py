"""The arithmetic of serve-time signals over a series' history: window functions, keep-alive, counter
rates and linear projections. Pure functions of (timestamp, value) points, oldest first.

Definitions (docs/signals.md states them for users):

- A window of ``seconds`` at ``now`` holds the points with ``now - seconds <= timestamp <= now``.
- ``max`` and ``avg`` are the maximum and the arithmetic mean of the window's values.
- ``p90`` is the nearest-rank 90th percentile: the ``ceil(0.9 * n)``-th smallest of the n values.
- ``ewma`` is the mean weighted by ``2 ** (-(newest - timestamp) / (seconds / 4))``: a half-life of a
  quarter of the window, so a point a whole window old weighs 1/16 of the newest.
- ``rate`` is the per-second increase of a counter: the sum of each step's increase, where a step down
  is a reset that counts the new value as the increase since zero, divided by the time the window's
  points span.
- ``slope`` is the least-squares slope of value over time (per second); ``project`` is the newest value
  plus ``slope * horizon``, never below 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from tidegauge.config.model import Window, WindowFunction

Point = tuple[float, float]
"""(timestamp, value)."""

EWMA_HALF_LIFE_FRACTION = 0.25
P90 = 0.9


def in_window(points: Sequence[Point], now: float, seconds: float) -> list[Point]:
    """The points of the last ``seconds`` up to ``now`` (source time), oldest first."""
    start = now - seconds
    return [point for point in points if start <= point[0] <= now]


def expiry(points: Sequence[Point], now: float, seconds: float) -> float:
    """The latest time up to which the window of ``seconds`` holds the same points as at ``now``: until
    its oldest point leaves, or a point with a later (future) timestamp enters."""
    until = math.inf
    for timestamp, _ in points:
        if timestamp > now:
            return min(until, timestamp)
        if timestamp >= now - seconds:
            until = min(until, timestamp + seconds)
    return until


def window_value(function: WindowFunction, points: Sequence[Point], seconds: float) -> float:
    """``function`` over a non-empty window of points (see the module's definitions)."""
    values = [value for _, value in points]
    if function == "max":
        return max(values)
    if function == "avg":
        return math.fsum(values) / len(values)
    if function == "p90":
        return sorted(values)[math.ceil(P90 * len(values)) - 1]
    newest = points[-1][0]
    half_life = seconds * EWMA_HALF_LIFE_FRACTION
    weights = [2.0 ** (-(newest - timestamp) / half_life) for timestamp, _ in points]
    return math.fsum(w * v for w, v in zip(weights, values, strict=True)) / math.fsum(weights)


def smoothed(
    value: float, points: Sequence[Point], now: float, window: Window | None, keep_alive: float | None
) -> float:
    """What the server serves for a series whose raw ``value`` ends ``points``: the window function of
    the window's points (the newest alone when none is in it), then raised by keep-alive. Shared with
    ``tidegauge explain``, so both compute the same number from the same history."""
    if window is not None:
        recent = in_window(points, now, window.seconds) or [points[-1]]
        value = window_value(window.function, recent, window.seconds)
    if keep_alive is not None:
        value = kept_alive(value, in_window(points, now, keep_alive))
    return value


def kept_alive(value: float, points: Sequence[Point]) -> float:
    """``value``, raised to 1 when any point (those of the keep-alive span) is non-zero."""
    if value < 1 and any(point_value != 0 for _, point_value in points):
        return 1.0
    return value


def rate(points: Sequence[Point]) -> float | None:
    """Per-second increase of a counter over the points (resets counted from zero); None under 2 points."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    increase = 0.0
    for (_, before), (_, after) in itertools.pairwise(points):
        increase += after - before if after >= before else after
    return increase / (points[-1][0] - points[0][0])


def slope(points: Sequence[Point]) -> float | None:
    """Least-squares slope of value over time, per second; None under 2 points or a zero time span."""
    if len(points) < 2:
        return None
    count = len(points)
    mean_t = math.fsum(t for t, _ in points) / count
    mean_v = math.fsum(v for _, v in points) / count
    spread = math.fsum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return math.fsum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def project(points: Sequence[Point], horizon_seconds: float) -> float | None:
    """The newest value plus ``slope * horizon``, at least 0; None when the slope is undefined."""
    per_second = slope(points)
    if per_second is None:
        return None
    return max(0.0, points[-1][1] + per_second * horizon_seconds)
