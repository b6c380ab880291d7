"""The store's behaviour, run against fakeredis, a real server and a real three-node cluster."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from tidegauge.model import CollectorStatus, Sample, SeriesKey, format_labels
from tidegauge.selectors import parse_selector
from tidegauge.store import COLLECTORS_KEY, Store, history_key, latest_key, meta_key, usage_key

NOW = 1_790_000_000.0


def sqs(queue: str, state: str, value: float, t: float = NOW, *, region: str = "eu-west-1") -> Sample:
    labels = {"queue": queue, "state": state, "region": region, "account": "123456789012"}
    return Sample.of("sqs_messages", labels, value, t, collected_at=t + 1, source="orders")


def test_write_then_read_latest_filters_by_selector(store: Store) -> None:
    # GIVEN three states of two queues
    store.write(
        [sqs("orders", s, v) for s, v in (("visible", 10), ("in_flight", 3), ("delayed", 1))]
        + [sqs("payments", "visible", 7)]
    )
    # WHEN the HPA selects one queue THEN every state of it comes back, with source timestamps
    orders = store.read_latest("sqs_messages", parse_selector("queue=orders"))
    assert sorted((s.labels["state"], s.value) for s in orders) == [
        ("delayed", 1.0),
        ("in_flight", 3.0),
        ("visible", 10.0),
    ]
    assert {s.timestamp for s in orders} == {NOW}
    assert {s.collected_at for s in orders} == {NOW + 1}
    # AND set-based selectors follow Kubernetes semantics
    visible = store.read_latest("sqs_messages", parse_selector("state in (visible),queue notin (orders)"))
    assert [(s.labels["queue"], s.value) for s in visible] == [("payments", 7.0)]
    assert len(store.read_latest("sqs_messages")) == 4
    assert store.read_latest("sqs_messages", parse_selector("queue=missing")) == []


def test_unknown_metric_reads_as_empty(store: Store) -> None:
    assert store.read_latest("no_such_metric") == []


def test_newer_sample_replaces_older_and_older_never_wins(store: Store) -> None:
    store.write([sqs("orders", "visible", 10, NOW)])
    assert store.write([sqs("orders", "visible", 12, NOW + 15)]) == 1
    # GIVEN a late writer with an older datapoint WHEN it writes THEN the newer value stays
    assert store.write([sqs("orders", "visible", 99, NOW + 5)]) == 0
    [sample] = store.read_latest("sqs_messages")
    assert (sample.value, sample.timestamp) == (12.0, NOW + 15)


def test_batch_spanning_metrics_is_written_per_metric(store: Store) -> None:
    cpu = Sample.of("aurora_cpu_percent", {"cluster": "prod"}, 41.5, NOW, source="db")
    assert store.write([sqs("orders", "visible", 1), cpu, sqs("orders", "visible", 2, NOW + 1)]) == 2
    assert store.metric_names() == {"sqs_messages", "aurora_cpu_percent"}
    assert [s.value for s in store.read_latest("sqs_messages")] == [2.0]
    assert [s.value for s in store.read_latest("aurora_cpu_percent")] == [41.5]


def test_label_values_with_separators_round_trip(store: Store) -> None:
    odd = {"expr": "a=b,c%d", "k8s.io/name": "x"}
    store.write([Sample.of("odd_metric", odd, 1.0, NOW)])
    [sample] = store.read_latest("odd_metric")
    assert sample.labels == odd


def test_history_is_bounded_and_ordered(store: Store) -> None:
    # GIVEN history_length=50 and 400 writes to one series
    for i in range(400):
        store.write([sqs("orders", "visible", i, NOW + i)])
    key = SeriesKey.of("sqs_messages", sqs("orders", "visible", 0).labels)
    points = store.read_history(key, count=1000)
    # THEN approximate trimming kept far fewer than 400, newest last, in order
    assert 50 <= len(points) < 400
    assert points[-1].value == 399.0
    assert [p.timestamp for p in points] == sorted(p.timestamp for p in points)
    assert [p.value for p in store.read_history(key, count=3)] == [397.0, 398.0, 399.0]


def test_history_disabled_with_zero_length(redis_client: object) -> None:
    store = Store(redis_client, history_length=0)  # type: ignore[arg-type]
    store.write([sqs("orders", "visible", 1)])
    key = SeriesKey.of("sqs_messages", sqs("orders", "visible", 1).labels)
    assert store.read_history(key) == []


def test_metric_metadata_lists_units_and_series_counts(store: Store) -> None:
    store.describe("sqs_messages", unit="messages", description="SQS messages by queue and state")
    store.write([sqs("orders", "visible", 1), sqs("orders", "delayed", 0)])
    [info] = store.list_metrics()
    assert (info.name, info.unit, info.series_count, info.source) == ("sqs_messages", "messages", 2, "orders")
    assert info.description == "SQS messages by queue and state"
    assert info.updated_at == NOW + 1


def test_collector_status_replaces_and_usage_accumulates(store: Store) -> None:
    first = CollectorStatus(
        source="orders",
        kind="sqs",
        started_at=NOW,
        finished_at=NOW + 2.5,
        ok=False,
        samples_written=9,
        series_failed=1,
        errors=("payments: AccessDenied",),
        api_calls={"GetQueueAttributes": 4},
        metrics_requested=0,
        duration_share_seconds=2.5,
    )
    second = CollectorStatus(
        source="orders",
        kind="sqs",
        started_at=NOW + 60,
        finished_at=NOW + 61,
        ok=True,
        samples_written=12,
        api_calls={"GetQueueAttributes": 4, "ListQueues": 1},
        duration_share_seconds=1.0,
    )
    store.write_status(first)
    store.write_status(second)
    assert store.read_statuses() == {"orders": second}
    usage = store.read_usage("orders")
    assert usage["runs"] == 2
    assert usage["failed_runs"] == 1
    assert usage["samples_written"] == 21
    assert usage["api_calls.GetQueueAttributes"] == 8
    assert usage["api_calls.ListQueues"] == 1
    assert usage["duration_share_seconds"] == pytest.approx(3.5)
    assert usage["since"] == NOW


def test_status_and_usage_written_as_compute_seconds_read_as_duration_share_seconds(store: Store) -> None:
    # GIVEN a status and a usage total recorded before the field was renamed
    old = {
        "source": "orders",
        "kind": "sqs",
        "started_at": NOW,
        "finished_at": NOW + 4,
        "ok": True,
        "compute_seconds": 4.0,
    }
    raw = cast(Any, store.client)  # writes as an older version did, past the store's own methods
    raw.hset(COLLECTORS_KEY, "orders", json.dumps(old))
    raw.hset(usage_key("orders"), mapping={"runs": 1, "compute_seconds": 4.0})

    # WHEN a new run is recorded beside them, and both are read back
    store.write_status(
        CollectorStatus("payments", "sqs", NOW + 60, NOW + 61, ok=True, duration_share_seconds=1.0)
    )
    raw.hincrbyfloat(usage_key("orders"), "duration_share_seconds", 1.5)

    # THEN the old record's seconds read under the new name, and the old total adds to the new one
    statuses = store.read_statuses()
    assert statuses["orders"].duration_share_seconds == 4.0
    assert statuses["payments"].duration_share_seconds == 1.0
    assert store.read_usage("orders")["duration_share_seconds"] == pytest.approx(5.5)
    assert "compute_seconds" not in store.read_usage("orders")


def test_retire_stale_removes_idle_series_and_their_history(store: Store) -> None:
    # GIVEN one series collected long ago and one just now
    old = Sample.of("sqs_messages", {"queue": "gone"}, 5, NOW - 7200, collected_at=NOW - 7200)
    fresh = Sample.of("sqs_messages", {"queue": "live"}, 6, NOW - 10, collected_at=NOW - 10)
    lonely = Sample.of("dead_metric", {"queue": "gone"}, 1, NOW - 7200, collected_at=NOW - 7200)
    store.write([old, fresh, lonely])
    # WHEN series idle for an hour are retired
    retired = store.retire_stale(3600, now=NOW)
    # THEN only the idle ones go, with their history, and an emptied metric leaves the set
    assert sorted(retired) == sorted([old.key, lonely.key])
    assert [s.labels["queue"] for s in store.read_latest("sqs_messages")] == ["live"]
    assert store.read_history(old.key) == []
    assert len(store.read_history(fresh.key)) == 1
    assert store.metric_names() == {"sqs_messages"}
    assert store.retire_stale(3600, now=NOW) == []


def test_retire_named_series(store: Store) -> None:
    a = sqs("orders", "visible", 1)
    b = sqs("orders", "delayed", 2)
    store.write([a, b])
    assert store.retire([a.key, SeriesKey.of("sqs_messages", {"queue": "never"})]) == 1
    assert [s.key for s in store.read_latest("sqs_messages")] == [b.key]


def test_keys_of_one_metric_share_a_cluster_slot() -> None:
    from redis.crc import key_slot

    metric = "sqs_messages"
    slots = {
        key_slot(k.encode()) for k in (latest_key(metric), history_key(metric, "ab12"), meta_key(metric))
    }
    assert len(slots) == 1


def test_repeated_reads_see_rewritten_values(store: Store) -> None:
    # GIVEN a read that warmed the per-series cache
    store.write([sqs("orders", "visible", 10, NOW)])
    assert [s.value for s in store.read_latest("sqs_messages")] == [10.0]
    # WHEN the series is rewritten THEN the next read returns the new value, not the cached one
    store.write([sqs("orders", "visible", 11, NOW + 15)])
    [sample] = store.read_latest("sqs_messages")
    assert (sample.value, sample.timestamp) == (11.0, NOW + 15)


# Records an older writer could store: non-finite and implausible times, and bytes that are no record.
INVALID_RECORDS = {
    "inf": '{"v":1,"t":Infinity,"c":Infinity,"src":"old"}',
    "nan": '{"v":1,"t":NaN,"c":NaN,"src":"old"}',
    "far-future": '{"v":1,"t":1e20,"c":1e20,"src":"old"}',
    "milliseconds": '{"v":1,"t":1790000000000,"c":1790000000000,"src":"old"}',
    "inf-value": '{"v":Infinity,"t":1790000000,"c":1790000000,"src":"old"}',
    "garbage": "not a record",
}


def plant_invalid_records(store: Store) -> None:
    store.client.hset(  # type: ignore[attr-defined]
        latest_key("sqs_messages"),
        mapping={format_labels((("queue", name),)): raw for name, raw in INVALID_RECORDS.items()},
    )


def test_invalid_stored_records_are_skipped_counted_and_retired(store: Store) -> None:
    # GIVEN one good series and six invalid records beside it
    store.write([Sample.of("sqs_messages", {"queue": "good"}, 5, NOW, collected_at=NOW)])
    plant_invalid_records(store)
    skipped: list[str] = []
    reader = Store(store.client, on_invalid=lambda metric, labels: skipped.append(f"{metric} {labels}"))
    # WHEN read THEN the good series answers, and each invalid record is skipped and reported
    assert [(s.labels, s.value) for s in reader.read_latest("sqs_messages")] == [({"queue": "good"}, 5.0)]
    assert sorted(skipped) == sorted(f"sqs_messages queue={name}" for name in INVALID_RECORDS)
    # WHEN stale series are retired THEN the invalid records go too (the good one is recent)
    retired = reader.retire_stale(3600, now=NOW)
    assert sorted(key.label_string for key in retired) == sorted(f"queue={name}" for name in INVALID_RECORDS)
    assert list(store.client.hgetall(latest_key("sqs_messages"))) == ["queue=good"]


def test_a_correct_write_replaces_an_invalid_stored_record(store: Store) -> None:
    # GIVEN invalid records stored by an older writer (an inf time looks newer than anything)
    plant_invalid_records(store)
    # WHEN a collector writes correct samples of those series THEN none is refused as "older"
    rewritten = [Sample.of("sqs_messages", {"queue": name}, 7, NOW) for name in INVALID_RECORDS]
    assert store.write(rewritten) == len(INVALID_RECORDS)
    assert sorted((s.labels["queue"], s.value) for s in store.read_latest("sqs_messages")) == sorted(
        (name, 7.0) for name in INVALID_RECORDS
    )
