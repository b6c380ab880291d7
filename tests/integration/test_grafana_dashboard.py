"""The Grafana dashboard's queries name only metrics (and labels) a real running server exports."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests.support.server_harness import (
    Pki,
    ServerThread,
    aggregator_headers,
    request,
    seed,
    server_config,
    settings_for,
)
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.ops.doctor_usage import parse_metrics_text

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "tidegauge.json"
METRIC_NAME = re.compile(r"\b(?:tidegauge|process)_[a-z0-9_]+\b")
GROUPING = re.compile(r"\bby \(([^)]*)\) \(+([^()]*?)\b((?:tidegauge|process)_[a-z0-9_]+)")
ADDED_BY_PROMETHEUS = {"job", "instance"}


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def exported(pki: Pki, redis_server: RedisServer) -> dict[str, set[str]]:
    """Metric name -> label names, from the /metrics of a server that has served one metric."""
    seed(redis_server.url, [Sample.of("sqs_messages", {"queue": "orders"}, 12, time.time() - 1)], flush=True)
    with ServerThread(settings_for(pki), server_config(redis_server.url)) as server:
        path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/sqs_messages"
        assert request(server.port, path, pki.context(pki.aggregator), aggregator_headers()).status == 200
        text = request(server.server.metrics_port, "/metrics", None).body.decode()
    # Every family is declared (# TYPE), with or without samples yet; a histogram's series have suffixes.
    families: dict[str, set[str]] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        families.update({name + suffix: set() for suffix in suffixes})
    for name, samples in parse_metrics_text(text).items():
        families.setdefault(name, set()).update(label for labels, _ in samples for label in labels)
    return families


def test_every_dashboard_query_uses_metrics_the_server_exports(pki: Pki, redis_server: RedisServer) -> None:
    # GIVEN the dashboard, and what a real server exports after serving one External metric
    dashboard = json.loads(DASHBOARD.read_text())
    metrics = exported(pki, redis_server)

    # WHEN each query's metric names and grouping labels are read
    for expr in queries(dashboard):
        names = METRIC_NAME.findall(expr)
        # THEN each query reads at least one of them, and every one is exported
        assert names, f"a query reads no tidegauge metric: {expr}"
        missing = [name for name in names if name not in metrics]
        assert not missing, f"{expr}: not exported: {missing} (exported: {sorted(metrics)})"
        # AND every `by (...)` label is a label of the metric it groups (or one Prometheus adds), where
        # the metric has samples to show its labels (counters nothing has incremented yet have none)
        for labels, _, name in GROUPING.findall(expr):
            wanted = {label.strip() for label in labels.split(",")} - ADDED_BY_PROMETHEUS
            if metrics[name]:
                assert wanted <= metrics[name], f"{expr}: {name} has labels {sorted(metrics[name])}"


def test_the_served_series_gauges_carry_the_value_and_age(pki: Pki, redis_server: RedisServer) -> None:
    # GIVEN a server that served sqs_messages{queue=orders} = 12
    metrics = exported(pki, redis_server)

    # THEN the per-series gauges exist with their bounded labels, and the dashboard graphs them
    assert metrics["tidegauge_served_series_value"] == {"metric", "series"}
    assert metrics["tidegauge_served_series_age_seconds"] == {"metric", "series"}
    exprs = " ".join(queries(json.loads(DASHBOARD.read_text())))
    assert "tidegauge_served_series_value" in exprs
    assert "tidegauge_served_series_age_seconds" in exprs
