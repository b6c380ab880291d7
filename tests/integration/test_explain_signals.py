"""``tidegauge explain hpa --config``: the raw values in real Redis beside what the server serves (windows,
derived metrics and their inputs), with the HPA read from the fake kube-apiserver over real HTTPS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster_objects import NAMESPACE, external_metric, external_values, hpa, put_workload
from tests.support.kube_fake import FakeKubeApiServer
from tidegauge.cli import main
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store

HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/worker"
EXTERNAL = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}"

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
sources:
  - {name: orders, type: sqs, region: eu-west-1, queues: {names: [orders]}}
  - {name: peak, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sqs_peak}
  - {name: smooth, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sqs_smoothed}
  - {name: sparse, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sqs_sparse}
  - {name: sent, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sent_total}
  - name: db
    type: cloudwatch
    region: eu-west-1
    queries:
      - {preset: aurora_cpu, identifier: orders-db, max_age_seconds: 240}
derived:
  orders_pressure: 'max(sqs_messages{queue="orders"} / 100, aurora_cpu_percent{cluster="orders-db"} / 70)'
  orders_sent_per_second: 'rate(sent_total{queue="orders"}[60s])'
metrics:
  sqs_messages: {max_age_seconds: 60}
  sqs_peak:
    max_age_seconds: 60
    window: {seconds: 30, function: max}
  sqs_smoothed:
    max_age_seconds: 60
    window: {seconds: 70, function: avg}
  sqs_sparse:
    max_age_seconds: 60
    keep_alive_seconds: 120
    fallback: {mode: last_known_good, max_age_seconds: 300}
"""


@pytest.fixture
def store(redis_server: RedisServer) -> Store:
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    return store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(autouse=True)
def workload(kube: FakeKubeApiServer) -> None:
    put_workload(kube, replicas=3, ready=3)
    kube.lists.add(f"/api/v1/namespaces/{NAMESPACE}/events")


def write_history(store: Store, metric: str, points: list[tuple[float, float]], **labels: str) -> None:
    """One write per point, oldest first: each appends to the series' history as a collector run does."""
    for timestamp, value in points:
        store.write([Sample.of(metric, labels, value, timestamp, source="test")])


def explain(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> str:
    code = main(
        [
            "explain", "hpa", "worker", "-n", NAMESPACE, "--kubeconfig", kube.write_kubeconfig(),
            "--redis-url", redis_server.url, "--config", str(config), *extra,
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def signals_by_metric(out: str) -> dict[str, Any]:
    return {signal["metric"]: signal for signal in json.loads(out)["signals"]}


def test_explain_shows_raw_values_beside_the_windowed_values_the_server_serves(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    store: Store,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a flickering queue whose newest raw value is 2, under a 30 s max window and a 70 s avg window
    now = time.time()
    history = [(now - 60, 1.0), (now - 40, 5.0), (now - 20, 9.0), (now - 2, 2.0)]
    write_history(store, "sqs_peak", history, queue="orders")
    write_history(store, "sqs_smoothed", history, queue="orders")
    metrics = [
        external_metric("sqs_peak", {"queue": "orders"}, "AverageValue", "3"),
        external_metric("sqs_smoothed", {"queue": "orders"}, "AverageValue", "3"),
    ]
    kube.put(HPA_PATH, hpa("worker", metrics, current=3, desired=3))
    kube.put(f"{EXTERNAL}/sqs_peak", external_values("sqs_peak", "9"))
    kube.put(f"{EXTERNAL}/sqs_smoothed", external_values("sqs_smoothed", "4250m"))

    # WHEN explain reads the HPA and the store
    signals = signals_by_metric(explain(kube, redis_server, config, capsys, "-o", "json"))

    # THEN each shows the raw 2 and what the server serves: max 9 over 30 s, the 70 s average 4.25
    [peak] = signals["sqs_peak"]["series"]
    [smooth] = signals["sqs_smoothed"]["series"]
    assert (peak["raw"], peak["served"], peak["stale"]) == (2.0, 9.0, False)
    assert (smooth["raw"], smooth["served"]) == (2.0, pytest.approx(4.25))
    assert "window max over 30 s" in signals["sqs_peak"]["options"]
    assert "window avg over 70 s" in signals["sqs_smoothed"]["options"]
    # AND the text form says the same
    text = explain(kube, redis_server, config, capsys)
    peak_line, smooth_line = (line for line in text.splitlines() if line.startswith("  queue=orders: raw 2,"))
    assert peak_line.endswith("-> served 9 (4 points)")
    assert smooth_line.endswith("-> served 4.25 (4 points)")


def test_explain_shows_keep_alive_holding_a_drained_queue_at_one(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    store: Store,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a sparse queue that had 3 messages 60 s ago and reads 0 now, with a 120 s keep-alive
    now = time.time()
    write_history(store, "sqs_sparse", [(now - 60, 3.0), (now - 5, 0.0)], queue="orders")
    kube.put(HPA_PATH, hpa("worker", [external_metric("sqs_sparse", {"queue": "orders"}, "Value", "1")]))
    kube.put(f"{EXTERNAL}/sqs_sparse", external_values("sqs_sparse", "1"))

    # WHEN explain reads the HPA and the store
    [signal] = json.loads(explain(kube, redis_server, config, capsys, "-o", "json"))["signals"]

    # THEN the raw 0 is served as 1, and the options say why (and what happens in an outage)
    [series] = signal["series"]
    assert (series["raw"], series["served"]) == (0.0, 1.0)
    assert "keep-alive 120 s" in signal["options"]
    assert "last known good up to 300 s past max age" in signal["options"]


def test_explain_says_which_stale_series_the_server_still_serves_as_last_known_good(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    store: Store,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a collector outage: sqs_sparse's series 100 s old (max age 60, last known good 300 s more),
    # and another 500 s old, past that limit
    now = time.time()
    write_history(store, "sqs_sparse", [(now - 100, 4.0)], queue="orders")
    write_history(store, "sqs_sparse", [(now - 500, 7.0)], queue="older")
    kube.put(HPA_PATH, hpa("worker", [external_metric("sqs_sparse", {}, "Value", "1")]))
    kube.put(f"{EXTERNAL}/sqs_sparse", external_values("sqs_sparse", "4"))

    # WHEN explain reads the HPA and the store
    [signal] = json.loads(explain(kube, redis_server, config, capsys, "-o", "json"))["signals"]

    # THEN both are stale; the one within the limit is what the server serves
    served = {s["labels"]: (s["stale"], s["servedByServer"]) for s in signal["series"]}
    assert served == {"queue=orders": (True, True), "queue=older": (True, False)}
    text = explain(kube, redis_server, config, capsys)
    assert "STALE, last known good" in next(line for line in text.splitlines() if "queue=orders: raw" in line)
    assert "STALE, left out by the server" in next(
        line for line in text.splitlines() if "queue=older:" in line
    )


def test_explain_shows_a_derived_metrics_expression_and_each_inputs_value_and_age(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    store: Store,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN both inputs of orders_pressure fresh: 250 messages 10 s old, 35 % CPU 60 s old
    now = time.time()
    write_history(store, "sqs_messages", [(now - 10, 250.0)], queue="orders")
    write_history(store, "aurora_cpu_percent", [(now - 60, 35.0)], cluster="orders-db")
    kube.put(HPA_PATH, hpa("worker", [external_metric("orders_pressure", {}, "Value", "1")], desired=3))
    kube.put(f"{EXTERNAL}/orders_pressure", external_values("orders_pressure", "2500m"))

    # WHEN explain reads the HPA and the store
    [signal] = json.loads(explain(kube, redis_server, config, capsys, "-o", "json"))["signals"]

    # THEN the expression and each input's value and age are shown, nothing stale
    assert signal["expression"].startswith("max(sqs_messages")
    inputs = {i["selector"]: i for i in signal["inputs"]}
    messages, cpu = inputs['sqs_messages{queue="orders"}'], inputs['aurora_cpu_percent{cluster="orders-db"}']
    assert (messages["value"], messages["stale"]) == (250.0, False)
    assert (cpu["value"], cpu["stale"], cpu["maxAgeSeconds"]) == (35.0, False, 240.0)
    assert messages["ageSeconds"] == pytest.approx(10, abs=5)
    assert cpu["ageSeconds"] == pytest.approx(60, abs=5)
    assert signal["stale"] is False


def test_explain_flags_a_stale_input_of_a_derived_metric(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    store: Store,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the CPU input 600 s old, past its 240 s max age: the server answers 404 for orders_pressure
    now = time.time()
    write_history(store, "sqs_messages", [(now - 10, 250.0)], queue="orders")
    write_history(store, "aurora_cpu_percent", [(now - 600, 35.0)], cluster="orders-db")
    kube.put(HPA_PATH, hpa("worker", [external_metric("orders_pressure", {}, "Value", "1")], desired=3))
    kube.put(f"{EXTERNAL}/orders_pressure", external_values("orders_pressure", "2500m"))

    # WHEN explain reads the HPA and the store, as text
    text = explain(kube, redis_server, config, capsys)

    # THEN the CPU input is flagged stale with its max age, and the consequence said; the queue is not
    cpu = next(line for line in text.splitlines() if 'input aurora_cpu_percent{cluster="orders-db"}' in line)
    queue = next(line for line in text.splitlines() if 'input sqs_messages{queue="orders"}' in line)
    assert "STALE (max age 240 s)" in cpu
    assert "STALE" not in queue
    assert 'the server answers 404 while aurora_cpu_percent{cluster="orders-db"} is stale' in text


def test_explain_shows_a_rate_input_as_the_rate_of_its_history(
    kube: FakeKubeApiServer,
    redis_server: RedisServer,
    store: Store,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a counter at 100, 130, 160, 190 over the last 44 s, read as rate(sent_total[60s])
    now = time.time()
    counts = [(now - 45, 100.0), (now - 30, 130.0), (now - 15, 160.0), (now - 1, 190.0)]
    write_history(store, "sent_total", counts, queue="orders")
    metric = external_metric("orders_sent_per_second", {}, "Value", "1")
    kube.put(HPA_PATH, hpa("worker", [metric], desired=3))
    kube.put(f"{EXTERNAL}/orders_sent_per_second", external_values("orders_sent_per_second", "2045m"))

    # WHEN explain reads the HPA and the store
    [signal] = json.loads(explain(kube, redis_server, config, capsys, "-o", "json"))["signals"]

    # THEN the input is the per-second increase over its window (90 / 44 s), not the raw count 190
    [sent] = signal["inputs"]
    assert sent["function"] == "rate over 60 s"
    assert sent["value"] == pytest.approx(90 / 44)
    assert sent["series"][0]["raw"] == 190.0
    assert sent["stale"] is False


def test_explain_with_an_unreachable_store_still_explains_the_hpa(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an HPA the kube-apiserver answers for, and Redis named on a port nothing listens on
    kube.put(HPA_PATH, hpa("worker", [external_metric("sqs_peak", {}, "Value", "3")], desired=3))
    kube.put(f"{EXTERNAL}/sqs_peak", external_values("sqs_peak", "9"))
    kubeconfig = kube.write_kubeconfig()

    # WHEN explain runs with that store
    code = main(
        ["explain", "hpa", "worker", "-n", NAMESPACE, "--kubeconfig", kubeconfig,
         "--redis-url", "redis://127.0.0.1:1/0", "-o", "json"]
    )  # fmt: skip

    # THEN the HPA's side is explained (exit 0) and the store's failure is said, not raised
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["desiredReplicas"] == 6
    assert report["signals"] == []
    assert "Redis unreachable" in report["storeError"]
