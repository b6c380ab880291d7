"""The demo chart: a real, deterministic 1000x600 PNG."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tidegauge.demo.chart import render_chart
from tidegauge.demo.timeline import TimelinePoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_timeline(seconds: int = 400) -> list[TimelinePoint]:
    timeline = []
    for t in range(seconds):
        backlog = max(0, 2000 - abs(t - 120) * 20)
        seen = t - t % 15
        timeline.append(
            TimelinePoint(
                t=float(t),
                visible=backlog,
                in_flight=min(backlog, 50),
                delayed=10 if 100 <= t < 140 else 0,
                hpa_value=None if t < 15 else float(max(0, 2000 - abs(seen - 120) * 20)),
                hpa_value_age=None if t < 15 else float(t - seen),
                cpu=None if t < 5 else 10.0 + backlog / 40,
                desired=1 if t < 75 else 10 if t < 250 else 2,
                ready=1 if t < 95 else 10 if t < 250 else 2,
            )
        )
    return timeline


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    assert (length, chunk_type) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_render_chart_writes_a_1000_by_600_png(tmp_path: Path) -> None:
    # GIVEN a run with a burst, a scale-up and a scale-down
    timeline = synthetic_timeline()

    # WHEN the chart is drawn into a folder that does not exist yet
    path = render_chart(timeline, tmp_path / "out" / "demo.png", "tidegauge demo")

    # THEN a real PNG of 10x6 inches at 100 dpi is there, with actual drawing in it
    data = path.read_bytes()
    assert path == tmp_path / "out" / "demo.png"
    assert data[:8] == PNG_SIGNATURE
    assert png_size(data) == (1000, 600)
    assert len(data) > 20_000


def test_render_chart_is_deterministic(tmp_path: Path) -> None:
    # GIVEN the same timeline
    timeline = synthetic_timeline()

    # WHEN it is drawn twice
    first = render_chart(timeline, tmp_path / "a.png", "run").read_bytes()
    second = render_chart(timeline, tmp_path / "b.png", "run").read_bytes()

    # THEN the files are identical
    assert first == second


def test_a_short_run_without_hpa_values_still_renders(tmp_path: Path) -> None:
    # GIVEN a 30 s run in which the HPA never saw a value
    timeline = [TimelinePoint(float(t), 5, 0, 0, None, None, None, desired=1, ready=1) for t in range(30)]

    # WHEN it is drawn
    path = render_chart(timeline, tmp_path / "short.png", "short")

    # THEN it is still a PNG of the same size
    assert png_size(path.read_bytes()) == (1000, 600)


def test_an_empty_timeline_is_refused(tmp_path: Path) -> None:
    # GIVEN no points
    # WHEN a chart is asked for
    # THEN it is refused rather than drawing empty axes, and nothing is written
    with pytest.raises(ValueError, match="empty"):
        render_chart([], tmp_path / "empty.png", "empty")
    assert not (tmp_path / "empty.png").exists()


def test_the_pressure_chart_draws_the_derived_values_and_the_cpu_target(tmp_path: Path) -> None:
    # GIVEN the same run drawn as the backlog chart and as the --derived-pressure chart
    timeline = synthetic_timeline()
    plain = render_chart(timeline, tmp_path / "plain.png", "t").read_bytes()

    drawn = render_chart(timeline, tmp_path / "pressure.png", "t", derived="orders_pressure").read_bytes()

    # THEN both are 1000x600 PNGs, and they differ (dots over the replicas, the 70 % line)
    assert png_size(drawn) == (1000, 600)
    assert drawn != plain
