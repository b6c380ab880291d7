"""The rate-limited log: one line per interval per key, with a count of what it held back."""

from __future__ import annotations

import logging

import pytest

from tidegauge.ratelimit_log import RateLimitedLog

LOGGER = "tidegauge.test.ratelimit"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def test_repeats_within_an_interval_log_one_line_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RateLimitedLog(logging.getLogger(LOGGER), 10.0, monotonic=clock)
    caplog.set_level(logging.WARNING, LOGGER)
    # GIVEN 1,000 identical failures within one interval
    logged = [log.warning("store unavailable: %s", "refused") for _ in range(1000)]
    # THEN one line, the rest counted
    assert logged.count(True) == 1
    assert messages(caplog) == ["store unavailable: refused"]
    # WHEN the interval has passed THEN the next line carries the count of the held-back ones
    clock.now += 10.0
    assert log.warning("store unavailable: %s", "timeout")
    assert messages(caplog)[-1] == "store unavailable: timeout (999 more like it in the last 10 s)"


def test_distinct_keys_are_limited_separately_and_bounded(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RateLimitedLog(logging.getLogger(LOGGER), 10.0, max_keys=3, monotonic=clock)
    caplog.set_level(logging.WARNING, LOGGER)
    assert log.warning("a failed")
    assert log.warning("b failed")
    assert not log.warning("a failed")
    # GIVEN more distinct keys than the bound WHEN they arrive THEN the oldest are forgotten, not kept
    for index in range(10):
        log.warning("client %s failed", index, key=("client", index))
    assert len(log._windows) == 3
    assert log.warning("a failed")


def test_flush_reports_held_back_counts(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger(LOGGER), 10.0, monotonic=Clock())
    caplog.set_level(logging.WARNING, LOGGER)
    log.warning("bad request from a client", key="bad-request")
    log.warning("bad request from a client", key="bad-request")
    log.flush()
    assert messages(caplog) == ["bad request from a client", "bad-request: 1 more in the last 0 s"]
    log.flush()
    assert len(messages(caplog)) == 2


def test_disabled_level_is_not_counted(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger(LOGGER), 10.0, monotonic=Clock())
    caplog.set_level(logging.ERROR, LOGGER)
    assert not log.warning("quiet")
    assert not log._windows
