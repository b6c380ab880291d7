"""``tidegauge top`` when not on a terminal: plain lines of every series from a real Redis server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tidegauge.cli import main
from tidegauge.localredis import RedisServer
from tidegauge.model import CollectorStatus, Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store


@pytest.fixture
def seeded(redis_server: RedisServer) -> str:
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    now = time.time()
    store.describe("sqs_messages", unit="messages")
    store.describe("db_free_bytes", unit="Bytes")
    store.write(
        [
            Sample.of("sqs_messages", {"queue": "orders"}, 2_500_000, now - 5, source="queues"),
            Sample.of("sqs_messages", {"queue": "old"}, 7, now - 4000, source="queues"),
            Sample.of("db_free_bytes", {"cluster": "main"}, 1536, now - 30, source="aurora"),
        ]
    )
    store.write_status(CollectorStatus("queues", "sqs", now - 3, now - 2, ok=True, samples_written=2))
    failed = CollectorStatus("aurora", "cloudwatch", now - 3, now - 2, ok=False, errors=("AccessDenied",))
    store.write_status(failed)
    store.close()
    return redis_server.url


def test_top_prints_plain_lines_with_human_units_and_the_stale_flag(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two fresh series and one an hour old, and a failed collector
    # WHEN top runs with its output not a terminal (captured)
    code = main(["top", "--redis-url", seeded])
    out = capsys.readouterr().out
    lines = out.splitlines()

    # THEN each series is one line, in human units, the old one flagged stale
    orders = next(line for line in lines if "queue=orders" in line)
    old = next(line for line in lines if "queue=old" in line)
    free = next(line for line in lines if "cluster=main" in line)
    assert "2.5M messages" in orders
    assert "stale" not in orders
    assert "stale" in old
    assert "1.5 KiB" in free
    assert "3 series, 1 stale" in out
    # AND the collectors are at the foot, the failed one with its error; no escape codes
    foot = out[out.index("COLLECTOR") :]
    assert "FAILED" in foot
    assert "AccessDenied" in foot
    assert "\x1b[" not in out
    assert code == 1


def test_top_sorts_by_age(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the seeded series
    # WHEN top sorts by age
    assert main(["top", "--redis-url", seeded, "--sort", "age"]) == 1
    out = capsys.readouterr().out

    # THEN the newest comes first and the hour-old one last
    order = [label for label in ("queue=orders", "cluster=main", "queue=old") if label in out]
    assert sorted(order, key=out.index) == ["queue=orders", "cluster=main", "queue=old"]


def test_top_flags_a_metric_serving_its_fallback(
    seeded: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a config that gives sqs_messages a 1 s max age and a fallback: both its series are stale
    config = tmp_path / "config.yaml"
    config.write_text(
        f"version: 1\nredis: {{url: '{seeded}'}}\n"
        "sources:\n  - {name: queues, type: sqs, region: eu-west-1, queues: {names: [orders]}}\n"
        "metrics:\n  sqs_messages: {max_age_seconds: 1, fallback: {value: 0, after_seconds: 0}}\n"
    )

    # WHEN top runs with it
    assert main(["top", "--config", str(config)]) == 1
    out = capsys.readouterr().out

    # THEN its series are stale and marked as served by the fallback; db_free_bytes (no fallback) is not
    orders = next(line for line in out.splitlines() if "queue=orders" in line)
    free = next(line for line in out.splitlines() if "cluster=main" in line)
    assert "stale" in orders
    assert "fallback" in orders
    assert "fallback" not in free
