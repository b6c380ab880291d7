"""The live terminal view and the summary: escape sequences only where they belong, numbers right."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tidegauge.demo.timeline import TimelinePoint, timeline_stats
from tidegauge.demo.view import LiveView, summary, wants_color

ANY_ESCAPE = re.compile(r"\x1b")
COLOR_CODE = re.compile(r"\x1b\[[0-9;]*m")
CURSOR_UP = re.compile(r"\x1b\[\d+A")
CLEAR_LINE = "\x1b[2K"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def point(t: float, backlog: int, desired: int, ready: int | None = None) -> TimelinePoint:
    return TimelinePoint(
        t=t,
        visible=backlog,
        in_flight=0,
        delayed=0,
        hpa_value=float(backlog),
        hpa_value_age=3.0,
        cpu=42.0,
        desired=desired,
        ready=desired if ready is None else ready,
    )


RUN = [point(float(t), backlog=0 if t < 30 else 2000, desired=1 if t < 50 else 5) for t in range(0, 61)]


def test_non_tty_output_has_no_escape_sequences() -> None:
    # GIVEN a pipe, with colour not forbidden by the environment
    stream = io.StringIO()
    view = LiveView(stream, environ={})

    # WHEN a run with a scale-up is shown
    for each in RUN:
        view.update(each)
    view.close()

    # THEN the output is plain lines: no colour, no cursor movement
    output = stream.getvalue()
    assert not ANY_ESCAPE.search(output)
    assert "scale up 1->5" in output


def test_non_tty_prints_one_line_per_interval_and_on_scale_events() -> None:
    # GIVEN a pipe and a 15 s line interval
    stream = io.StringIO()
    view = LiveView(stream, environ={}, line_interval_seconds=15.0)

    # WHEN 61 one-second points are shown, with a scale-up at 50 s
    for each in RUN:
        view.update(each)
    view.close()

    # THEN there is a header, then lines every 15 s plus one for the scale event at 50 s
    lines = stream.getvalue().splitlines()
    assert lines[0].split()[:3] == ["time", "visible", "in-flight"]
    assert [line.split()[0] for line in lines[1:]] == ["0:00", "0:15", "0:30", "0:45", "0:50", "1:00"]
    assert lines[5].endswith("scale up 1->5")


def test_no_color_on_a_terminal_removes_colour_but_still_redraws() -> None:
    # GIVEN a terminal and NO_COLOR set
    stream = Terminal()
    clock = FakeClock(0.0)
    view = LiveView(stream, environ={"NO_COLOR": "1"}, clock=clock)

    # WHEN several points are shown, time passing between them
    for each in RUN:
        view.update(each)
        clock.now += 1.0
    view.close()

    # THEN there is no colour code, but the block is redrawn in place
    output = stream.getvalue()
    assert not COLOR_CODE.search(output)
    assert CURSOR_UP.search(output)


def test_a_terminal_redraws_a_fixed_block_in_place_with_colour() -> None:
    # GIVEN a terminal, colour allowed
    stream = Terminal()
    clock = FakeClock(0.0)
    view = LiveView(stream, environ={}, clock=clock)

    # WHEN two points are shown a second apart
    view.update(RUN[0])
    clock.now = 1.0
    view.update(RUN[50])

    # THEN the second drawing moves the cursor up over the three-line block and clears each line
    output = stream.getvalue()
    assert "\x1b[3A" in output
    assert output.count(CLEAR_LINE) == 6
    assert COLOR_CODE.search(output)
    assert "last scale event: 0:50 scale up 1->5" in output


def test_a_terminal_redraws_at_most_four_times_per_second() -> None:
    # GIVEN a terminal and a clock that does not move
    stream = Terminal()
    clock = FakeClock(0.0)
    view = LiveView(stream, environ={}, clock=clock)

    # WHEN many points arrive within the same instant
    for each in RUN[:10]:
        view.update(each)
    drawn_before_close = stream.getvalue().count(CLEAR_LINE)
    view.close()

    # THEN only the first was drawn, and closing draws the final state
    assert drawn_before_close == 3
    assert stream.getvalue().count(CLEAR_LINE) == 6
    assert "0:09" in stream.getvalue().rsplit("\x1b[3A", 1)[1]


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({}, True, True),
        ({"NO_COLOR": ""}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": "false"}, True, False),
        ({}, False, False),
    ],
)
def test_colour_follows_no_color_and_the_terminal(environ: dict[str, str], tty: bool, expected: bool) -> None:
    # GIVEN an environment and a stream
    stream = Terminal() if tty else io.StringIO()

    # WHEN colour is decided
    # THEN any non-empty NO_COLOR or a non-terminal turns it off (no-color.org)
    assert wants_color(stream, environ) is expected


def test_an_explicit_colour_argument_beats_the_environment() -> None:
    # GIVEN a terminal with NO_COLOR unset
    stream = Terminal()

    # WHEN colour is switched off explicitly
    view = LiveView(stream, color=False, environ={})
    view.update(RUN[50])
    view.close()

    # THEN no colour codes are written
    assert not COLOR_CODE.search(stream.getvalue())


def test_values_are_shown_as_canonical_quantities() -> None:
    # GIVEN the HPA saw 2000 messages, then half a message
    stream = io.StringIO()
    view = LiveView(stream, environ={})

    # WHEN those points are shown
    view.update(point(0.0, backlog=2000, desired=1))
    view.update(TimelinePoint(15.0, 0, 0, 0, 0.5, 12.0, None, 1, 1))
    view.close()

    # THEN they read as a Kubernetes quantity would
    first, second = stream.getvalue().splitlines()[1:]
    assert first.split()[4] == "2k"
    assert second.split()[4:7] == ["500m", "12s", "-"]


SYNTHETIC = [
    point(0.0, backlog=0, desired=1),
    point(10.0, backlog=100, desired=1),
    point(20.0, backlog=400, desired=4),
    point(30.0, backlog=400, desired=4),
    point(40.0, backlog=200, desired=4, ready=3),
    point(50.0, backlog=3, desired=2),
    point(60.0, backlog=0, desired=1),
]


def test_summary_reports_peak_drain_scaling_calls_and_chart() -> None:
    # GIVEN a run peaking at 400 messages at 20 s, below 1 % (4) at 50 s, scaled 1 -> 4 -> 2 -> 1
    calls = {"ReceiveMessage": 12, "SendMessageBatch": 30, "GetQueueAttributes": 4}

    # WHEN it is summarised
    text = summary(SYNTHETIC, calls, Path("out/demo.png"))

    # THEN each number is right
    assert "peak backlog   400 messages at 0:20" in text
    assert "time to drain  30 s" in text
    assert "scale-ups      1" in text
    assert "scale-downs    2" in text
    assert "max replicas   4 desired, 4 ready" in text
    assert "AWS calls      46 (SendMessageBatch 30, ReceiveMessage 12, GetQueueAttributes 4)" in text
    assert "chart          out/demo.png" in text
    assert not ANY_ESCAPE.search(text)


def test_summary_says_when_the_backlog_did_not_drain() -> None:
    # GIVEN a run that ends at its peak
    timeline = SYNTHETIC[:3]

    # WHEN it is summarised without a chart or AWS calls
    text = summary(timeline, {}, None)

    # THEN it says so instead of inventing a drain time
    assert "not drained before the end of the run" in text
    assert "AWS calls      0\n" in text
    assert "chart          not drawn" in text


def test_stats_of_a_run_without_backlog_drain_in_no_time() -> None:
    # GIVEN a run that never had a backlog
    timeline = [point(float(t), backlog=0, desired=1) for t in range(5)]

    # WHEN its numbers are computed
    stats = timeline_stats(timeline)

    # THEN nothing had to drain and nothing scaled
    assert (stats.peak_backlog, stats.drain_seconds, stats.scale_ups, stats.scale_downs) == (0, 0.0, 0, 0)


def test_summary_separates_the_collectors_calls_from_the_workload_s() -> None:
    # GIVEN the collectors' calls and the simulated workload's own
    collectors = {"GetQueueAttributes": 40, "GetMetricData": 12}
    workload = {"SendMessageBatch": 300, "ReceiveMessage": 500}

    # WHEN the run is summarised with both
    text = summary(SYNTHETIC, collectors, None, workload_calls=workload)

    # THEN each total is labelled with whose calls they are
    assert "AWS calls      52 by the collectors (GetQueueAttributes 40, GetMetricData 12)\n" in text
    workload_line = "800 by the simulated workload, not tidegauge (ReceiveMessage 500, SendMessageBatch 300)"
    assert f"\n{' ' * 17}{workload_line}\n" in text
