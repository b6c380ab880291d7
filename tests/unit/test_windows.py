"""Window functions, keep-alive, rates and projections against straightforward reference computations."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidegauge.server import windows
from tidegauge.server.windows import Point

values = st.integers(min_value=-1000, max_value=1000).map(float)


@st.composite
def histories(draw: st.DrawFn, min_size: int = 1) -> list[Point]:
    """Points at strictly increasing whole-second times, oldest first."""
    steps = draw(st.lists(st.integers(min_value=1, max_value=90), min_size=min_size, max_size=40))
    times = [1_700_000_000.0 + sum(steps[: index + 1]) for index in range(len(steps))]
    return [(time, draw(values)) for time in times]


def reference(function: str, points: list[Point], seconds: float) -> float:
    numbers = sorted(value for _, value in points)
    if function == "max":
        return numbers[-1]
    if function == "avg":
        return float(sum(Fraction(value) for value in numbers) / len(numbers))
    if function == "p90":
        # the smallest value with at least 90 % of the values at or below it
        return next(v for v in numbers if 10 * sum(1 for w in numbers if w <= v) >= 9 * len(numbers))
    newest = points[-1][0]
    weights = [math.exp(-math.log(2) * (newest - t) / (seconds / 4)) for t, _ in points]
    return sum(w * v for w, (_, v) in zip(weights, points, strict=True)) / sum(weights)


@given(histories(), st.sampled_from(["max", "avg", "p90", "ewma"]), st.integers(1, 3600))
def test_window_functions_equal_the_reference(points: list[Point], function: str, seconds: int) -> None:
    # GIVEN any history and window WHEN the window at the newest point is computed
    now = points[-1][0]
    recent = windows.in_window(points, now, seconds)
    # THEN the window holds exactly the points of the last `seconds`, and the function is the reference's
    assert recent == [p for p in points if now - p[0] <= seconds]
    result = windows.window_value(function, recent, seconds)  # type: ignore[arg-type]
    assert result == pytest.approx(reference(function, recent, seconds), rel=1e-9, abs=1e-9)


def reference_rate(points: list[Point]) -> float:
    """Counter runs split at each decrease: each run's rise, plus each reset's new value."""
    increase = Fraction(0)
    run_start = points[0][1]
    for index in range(1, len(points)):
        before, after = points[index - 1][1], points[index][1]
        if after < before:
            increase += Fraction(before) - Fraction(run_start) + Fraction(after)
            run_start = after
    increase += Fraction(points[-1][1]) - Fraction(run_start)
    return float(increase / Fraction(points[-1][0] - points[0][0]))


@given(histories(min_size=2))
def test_rate_equals_the_reference_across_counter_resets(points: list[Point]) -> None:
    counters = [(t, abs(v)) for t, v in points]

    assert windows.rate(counters) == pytest.approx(reference_rate(counters), rel=1e-9, abs=1e-9)


def test_rate_counts_a_reset_from_zero() -> None:
    # GIVEN a counter 10 -> 30, reset, -> 5 -> 25 over 30 s WHEN its rate is taken THEN (20 + 5 + 20) / 30
    assert windows.rate([(0.0, 10.0), (10.0, 30.0), (20.0, 5.0), (30.0, 25.0)]) == pytest.approx(1.5)


def reference_slope(points: list[Point]) -> float | None:
    n = len(points)
    st_, sv = sum(Fraction(t) for t, _ in points), sum(Fraction(v) for _, v in points)
    stt = sum(Fraction(t) ** 2 for t, _ in points)
    stv = sum(Fraction(t) * Fraction(v) for t, v in points)
    denominator = n * stt - st_**2
    return None if denominator == 0 else float((n * stv - st_ * sv) / denominator)


@given(histories(min_size=2), st.integers(1, 600))
def test_projection_is_the_newest_value_plus_the_least_squares_trend_never_below_zero(
    points: list[Point], horizon: int
) -> None:
    expected_slope = reference_slope(points)
    assert expected_slope is not None
    expected = max(0.0, points[-1][1] + expected_slope * horizon)

    result = windows.project(points, horizon)

    assert result is not None
    assert result >= 0
    assert result == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_rate_and_projection_need_two_points() -> None:
    assert windows.rate([(0.0, 1.0)]) is None
    assert windows.project([(0.0, 1.0)], 60) is None


@given(histories(), values)
def test_keep_alive_reads_at_least_one_exactly_when_a_point_is_non_zero(
    points: list[Point], value: float
) -> None:
    result = windows.kept_alive(value, points)

    assert result == (max(value, 1.0) if any(v != 0 for _, v in points) else value)


@given(histories(), st.integers(0, 4000), st.integers(1, 3600), st.floats(0, 1))
def test_a_window_holds_the_same_points_until_its_expiry(
    points: list[Point], offset: int, seconds: int, fraction: float
) -> None:
    # GIVEN any history, a moment around it and a window WHEN a later moment is before the expiry
    now = points[0][0] - 100 + offset
    until = windows.expiry(points, now, seconds)
    later = now + fraction * (min(until, now + 10_000) - now)
    # THEN the window then holds the same points (so a cached answer stays right until the expiry)
    if later < until:
        assert windows.in_window(points, later, seconds) == windows.in_window(points, now, seconds)
    # AND just after the expiry it does not
    if until < now + 10_000:
        assert windows.in_window(points, until + 0.5, seconds) != windows.in_window(points, now, seconds)
