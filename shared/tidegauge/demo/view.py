"""The demo's terminal output: a live view while it runs and a summary at the end.

On a terminal the view redraws a small block in place, at most a few times per second; anywhere
else (a pipe, a CI log) it prints one plain line per interval of simulated time and on every scale
event, with no escape sequences. Colour follows https://no-color.org: a non-empty ``NO_COLOR``
turns it off, and an explicit ``color`` argument beats the environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tidegauge.demo.timeline import DRAINED_FRACTION, TimelinePoint, timeline_stats
from tidegauge.quantity import QuantityError, format_quantity

_CSI = "\x1b["
_RESET = f"{_CSI}0m"
_BOLD = f"{_CSI}1m"
_GREEN = f"{_CSI}32m"
_YELLOW = f"{_CSI}33m"
_RED = f"{_CSI}31m"
STALE_AGE_SECONDS = 60.0
"""A metric value older than this is shown in red: the HPA is acting on old data."""

_COLUMNS = (
    ("time", 6),
    ("visible", 8),
    ("in-flight", 9),
    ("delayed", 7),
    ("hpa-value", 9),
    ("age", 5),
    ("cpu", 4),
    ("desired", 7),
    ("ready", 5),
)


def wants_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set to a non-empty value."""
    environment = os.environ if environ is None else environ
    if environment.get("NO_COLOR", ""):
        return False
    return _is_tty(stream)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def format_clock(seconds: float) -> str:
    """Simulated time as ``m:ss``."""
    whole = max(round(seconds), 0)
    return f"{whole // 60}:{whole % 60:02d}"


def _format_value(value: float | None) -> str:
    if value is None:
        return "-"
    try:
        return format_quantity(value)
    except QuantityError:
        return "?"


class LiveView:
    """Shows each :class:`TimelinePoint` as it comes; call :meth:`close` at the end of the run."""

    def __init__(
        self,
        stream: TextIO,
        color: bool | None = None,
        *,
        line_interval_seconds: float = 15.0,
        redraw_interval_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._stream = stream
        self._tty = _is_tty(stream)
        self._color = wants_color(stream, environ) if color is None else color
        self._line_interval = line_interval_seconds
        self._redraw_interval = redraw_interval_seconds
        self._clock = clock
        self._previous: TimelinePoint | None = None
        self._pending: TimelinePoint | None = None
        self._last_event = ""
        self._last_draw: float | None = None
        self._drawn_lines = 0
        self._last_line_t: float | None = None

    def update(self, point: TimelinePoint) -> None:
        """Record ``point``; draw it now or later, as the output kind allows."""
        event = self._event(point)
        if event:
            self._last_event = f"{format_clock(point.t)} {event}"
        self._previous = point
        if self._tty:
            self._pending = point
            now = self._clock()
            if self._last_draw is None or now - self._last_draw >= self._redraw_interval:
                self._redraw(point)
                self._last_draw = now
            return
        due = self._last_line_t is None or (
            point.t // self._line_interval != self._last_line_t // self._line_interval
        )
        if due or event:
            self._print_line(point, event)

    def close(self) -> None:
        """Show the final state: the last point is always drawn or printed."""
        if self._tty and self._pending is not None:
            self._redraw(self._pending)
        elif not self._tty and self._previous is not None and self._last_line_t != self._previous.t:
            self._print_line(self._previous, "")
        self._stream.flush()

    def _event(self, point: TimelinePoint) -> str:
        if self._previous is None or point.desired == self._previous.desired:
            return ""
        direction = "up" if point.desired > self._previous.desired else "down"
        return f"scale {direction} {self._previous.desired}->{point.desired}"

    def _header(self) -> str:
        text = " ".join(f"{name:>{width}}" for name, width in _COLUMNS) + "  event"
        return self._paint(text, _BOLD)

    def _row(self, point: TimelinePoint, event: str) -> str:
        age = "-" if point.hpa_value_age is None else f"{point.hpa_value_age:.0f}s"
        cpu = "-" if point.cpu is None else f"{point.cpu:.0f}%"
        cells = (
            format_clock(point.t),
            str(point.visible),
            str(point.in_flight),
            str(point.delayed),
            _format_value(point.hpa_value),
            age,
            cpu,
            str(point.desired),
            str(point.ready),
        )
        parts = [f"{cell:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True)]
        if point.hpa_value_age is not None and point.hpa_value_age >= STALE_AGE_SECONDS:
            parts[5] = self._paint(parts[5], _RED)
        text = " ".join(parts)
        if event:
            text += "  " + self._paint(event, _GREEN if " up " in event else _YELLOW)
        return text

    def _paint(self, text: str, style: str) -> str:
        return f"{style}{text}{_RESET}" if self._color else text

    def _print_line(self, point: TimelinePoint, event: str) -> None:
        if self._last_line_t is None:
            self._stream.write(self._header() + "\n")
        self._stream.write(self._row(point, event) + "\n")
        self._stream.flush()
        self._last_line_t = point.t

    def _redraw(self, point: TimelinePoint) -> None:
        last = self._last_event or "no scaling yet"
        lines = (self._header(), self._row(point, ""), f"last scale event: {last}")
        output = [f"{_CSI}{self._drawn_lines}A"] if self._drawn_lines else []
        output.extend(f"\r{_CSI}2K{line}\n" for line in lines)
        self._stream.write("".join(output))
        self._stream.flush()
        self._drawn_lines = len(lines)
        self._pending = None


def summary(
    timeline: Sequence[TimelinePoint],
    aws_calls: Mapping[str, int],
    chart_path: Path | None,
    *,
    workload_calls: Mapping[str, int] | None = None,
) -> str:
    """The end-of-run report: backlog peak and drain, scaling, AWS calls per operation, chart path.

    With ``workload_calls`` (the simulated producers' and consumers' own calls), ``aws_calls`` are
    labelled as the collectors' and the two are shown on separate lines.
    """
    stats = timeline_stats(timeline)
    if stats.drain_seconds is None:
        drained = "not drained before the end of the run"
    else:
        drained = f"{stats.drain_seconds:.0f} s (from the peak to below {DRAINED_FRACTION:.0%} of it)"
    lines = [
        "Summary",
        f"  peak backlog   {stats.peak_backlog} messages at {format_clock(stats.peak_time)}",
        f"  time to drain  {drained}",
        f"  scale-ups      {stats.scale_ups}",
        f"  scale-downs    {stats.scale_downs}",
        f"  max replicas   {stats.max_desired} desired, {stats.max_ready} ready",
    ]
    if workload_calls is None:
        lines.append(f"  AWS calls      {_calls(aws_calls)}")
    else:
        lines.append(f"  AWS calls      {_calls(aws_calls, 'by the collectors')}")
        lines.append(f"                 {_calls(workload_calls, 'by the simulated workload, not tidegauge')}")
    lines.append(f"  chart          {chart_path if chart_path is not None else 'not drawn'}")
    return "\n".join(lines) + "\n"


def _calls(calls: Mapping[str, int], label: str = "") -> str:
    """``46 (SendMessageBatch 30, ReceiveMessage 12, ...)``: the total, then operations by count."""
    by_count = sorted(calls.items(), key=lambda item: (-item[1], item[0]))
    detail = ", ".join(f"{operation} {count}" for operation, count in by_count)
    text = f"{sum(calls.values())}" + (f" {label}" if label else "")
    return text + (f" ({detail})" if detail else "")
