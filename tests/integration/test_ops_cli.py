"""The operator commands read what collectors wrote, from a real Redis server."""

from __future__ import annotations

import json
import time

import pytest

from tidegauge.cli import main
from tidegauge.localredis import RedisServer
from tidegauge.model import CollectorStatus, Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store


@pytest.fixture
def filled(redis_server: RedisServer) -> str:
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    now = time.time()
    store.describe("sqs_messages", unit="messages")
    store.write(
        [
            Sample.of("sqs_messages", {"queue": "orders", "state": "visible"}, 1500, now - 5, source="q"),
            Sample.of("sqs_messages", {"queue": "orders", "state": "delayed"}, 500, now - 5, source="q"),
            Sample.of("sqs_messages", {"queue": "other", "state": "visible"}, 7, now - 5, source="q"),
        ]
    )
    status = CollectorStatus("q", "sqs", now - 3, now - 2, ok=False, errors=("other: AccessDenied",))
    store.write_status(status)
    store.close()
    return redis_server.url


def test_metrics_lists_metrics_and_sums_a_selection(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--redis-url", filled]) == 0
    listing = capsys.readouterr().out
    assert "sqs_messages" in listing
    assert "messages" in listing
    assert main(["metrics", "sqs_messages", "-l", "queue=orders", "--redis-url", filled]) == 0
    out = capsys.readouterr().out
    assert "2 series, sum 2k" in out
    assert "queue=orders,state=delayed" in out


def test_metrics_json_and_empty_selection_exit_code(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "sqs_messages", "-l", "queue in (other)", "--json", "--redis-url", filled]) == 0
    [series] = json.loads(capsys.readouterr().out)
    assert series["labels"] == {"queue": "other", "state": "visible"}
    assert main(["metrics", "sqs_messages", "-l", "queue=none", "--redis-url", filled]) == 1


def test_metrics_rejects_a_bad_selector(filled: str) -> None:
    with pytest.raises(SystemExit, match="invalid label selector"):
        main(["metrics", "sqs_messages", "-l", "queue in orders", "--redis-url", filled])


def test_status_shows_failed_collectors(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--redis-url", filled]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "other: AccessDenied" in out
    assert main(["status", "--json", "--redis-url", filled]) == 1
    assert json.loads(capsys.readouterr().out)["q"]["usage"]["failed_runs"] == 1
