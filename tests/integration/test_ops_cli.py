"""The operator commands read what collectors wrote, from a real Redis server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

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
    assert "2 series, 0 stale" in out
    assert "sum of the fresh ones 2000 (2k)" in out
    assert "queue=orders,state=delayed" in out


def test_metrics_json_and_empty_selection_exit_code(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "sqs_messages", "-l", "queue in (other)", "--json", "--redis-url", filled]) == 0
    [series] = json.loads(capsys.readouterr().out)
    assert series["labels"] == {"queue": "other", "state": "visible"}
    assert main(["metrics", "sqs_messages", "-l", "queue=none", "--redis-url", filled]) == 1


def test_metrics_rejects_a_bad_selector(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "sqs_messages", "-l", "queue in orders", "--redis-url", filled]) == 2
    assert "invalid label selector" in capsys.readouterr().err


def test_status_shows_failed_collectors(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--redis-url", filled]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "other: AccessDenied" in out
    assert main(["status", "--json", "--redis-url", filled]) == 1
    assert json.loads(capsys.readouterr().out)["q"]["usage"]["failed_runs"] == 1


@pytest.mark.parametrize("command", ["status", "metrics"])
def test_unreachable_redis_is_one_line_and_exit_1(command: str) -> None:
    # GIVEN a Redis URL nothing listens on (port 1 is never a Redis server)
    # WHEN an operator command runs as a user runs it
    result = subprocess.run(
        [sys.executable, "-m", "tidegauge.cli", command, "--redis-url", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it says what failed and the fix on one line, with no traceback, and exits 1
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tidegauge {command}: Redis unreachable")
    assert "Fix: check the Redis URL" in lines[0]


def test_debug_log_level_shows_the_traceback_of_a_known_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-level", "debug", "status", "--redis-url", "redis://127.0.0.1:1/0"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_no_redis_named_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TIDEGAUGE_REDIS_URL", raising=False)
    monkeypatch.delenv("TIDEGAUGE_CONFIG", raising=False)
    assert main(["status"]) == 2
    assert "say where Redis is" in capsys.readouterr().err


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tidegauge.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    from tidegauge import __version__

    assert result.stdout.strip() == f"tidegauge {__version__}"


def test_metrics_flags_stale_series_and_shows_plain_values(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a fresh fractional value and a series older than the default max age (120 s)
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    now = time.time()
    store.write(
        [
            Sample.of("aurora_cpu_percent", {"cluster": "a"}, 7.943486147, now - 10, source="db"),
            Sample.of("aurora_cpu_percent", {"cluster": "b"}, 50, now - 600, source="db"),
        ]
    )
    store.close()
    # WHEN the metric is shown
    assert main(["metrics", "aurora_cpu_percent", "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    # THEN the value reads as a number with the served quantity beside it, and the old series is stale
    assert rows["cluster=a"][1:3] == ["7.94349", "7943486147n"]
    assert rows["cluster=b"][-1] == "stale"
    assert "2 series, 1 stale" in out
    assert "sum of the fresh ones 7.94349" in out
    # AND the JSON says the same
    assert main(["metrics", "aurora_cpu_percent", "--json", "--redis-url", redis_server.url]) == 0
    series = {item["labels"]["cluster"]: item for item in json.loads(capsys.readouterr().out)}
    assert (series["a"]["stale"], series["b"]["stale"]) == (False, True)
    assert series["b"]["value"] == 50
    assert isinstance(series["b"]["value"], int)


def test_metrics_stale_rule_follows_the_config(
    redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a series 600 s old and a config that lets the metric be 900 s old
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    store.write([Sample.of("aurora_cpu_percent", {"cluster": "b"}, 50, time.time() - 600, source="db")])
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"version: 1\nredis:\n  url: {redis_server.url}\n"
        "sources:\n  - {name: db, type: cloudwatch, region: us-east-1, "
        "queries: [{preset: aurora_cpu, identifier: b}]}\n"
        "metrics:\n  aurora_cpu_percent:\n    max_age_seconds: 900\n"
    )
    # WHEN shown through that config THEN it is not stale
    assert main(["metrics", "aurora_cpu_percent", "--config", str(config)]) == 0
    assert "1 series, 0 stale (older than 900 s" in capsys.readouterr().out


def test_metrics_unknown_metric_says_so(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "sqs_mesages", "--redis-url", filled]) == 1
    error = capsys.readouterr().err
    assert "no metric 'sqs_mesages' in Redis (known: sqs_messages); did you mean 'sqs_messages'?" in error


def test_status_json_counters_are_integers(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["status", "--json", "--redis-url", filled])
    usage = json.loads(capsys.readouterr().out)["q"]["usage"]
    assert usage["runs"] == 1
    assert isinstance(usage["runs"], int)


def test_operator_commands_use_the_redis_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a server that requires a password, and the password only in TIDEGAUGE_REDIS_PASSWORD
    with RedisServer(extra_args=("--requirepass", "s3cret")) as server:
        monkeypatch.setenv("TIDEGAUGE_REDIS_PASSWORD", "s3cret")
        # WHEN status reads it THEN it authenticates (an empty status table, exit 0)
        assert main(["status", "--redis-url", server.url]) == 0
        assert "SOURCE" in capsys.readouterr().out
        # AND without it the server refuses, said on one line
        monkeypatch.delenv("TIDEGAUGE_REDIS_PASSWORD")
        assert main(["status", "--redis-url", server.url]) == 1
        assert "tidegauge status:" in capsys.readouterr().err


def test_metric_metadata_keeps_every_source(redis_server: RedisServer) -> None:
    # GIVEN two sources writing series of one metric, one after the other
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    now = time.time()
    store.write([Sample.of("sqs_messages", {"queue": "a"}, 1, now, source="team-a")])
    store.write([Sample.of("sqs_messages", {"queue": "b"}, 2, now, source="team-b")])
    # WHEN the metric is described THEN both sources are named
    (info,) = store.list_metrics()
    store.close()
    assert info.source == "team-a,team-b"
