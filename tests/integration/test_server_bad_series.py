"""One bad series never fails a metric's answer: invalid stored records and unservable values."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from tests.support.server_harness import (
    Pki,
    ServerThread,
    aggregator_headers,
    request,
    server_config,
    settings_for,
)
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store, latest_key

pytestmark = pytest.mark.integration

METRIC_PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/sqs_messages"
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_invalid_and_unservable_series_are_left_out_counted_and_logged_once(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a good series, one whose value the HPA cannot read, and records an older writer stored
    # with inf, nan and 1e20 timestamps
    now = time.time()
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    store.write(
        [
            Sample.of("sqs_messages", {"queue": "good"}, 5, now - 5),
            Sample.of("sqs_messages", {"queue": "huge"}, 1e16, now - 5),
        ]
    )
    store.client.hset(  # type: ignore[attr-defined]
        latest_key("sqs_messages"),
        mapping={
            "queue=inf": '{"v":1,"t":Infinity,"c":Infinity,"src":"old"}',
            "queue=nan": '{"v":1,"t":NaN,"c":NaN,"src":"old"}',
            "queue=far": '{"v":1,"t":1e20,"c":1e20,"src":"old"}',
        },
    )
    store.close()
    pki = Pki(tmp_path)
    with (
        caplog.at_level(logging.WARNING),
        ServerThread(settings_for(pki), server_config(redis_server.url)) as server,
    ):
        # WHEN the HPA asks several times THEN the good series answers, with an RFC 3339 UTC time
        for _ in range(4):
            reply = request(server.port, METRIC_PATH, pki.context(pki.aggregator), aggregator_headers())
            assert reply.status == 200, reply.body
            items = reply.json()["items"]
            assert [(item["metricLabels"], item["value"]) for item in items] == [({"queue": "good"}, "5")]
            assert RFC3339_UTC.fullmatch(items[0]["timestamp"])
        scraped = request(server.server.metrics_port, "/metrics", None).body.decode()
    # THEN what was left out is counted by reason, and logged once per kind, not per request
    dropped = re.compile(r'tidegauge_series_dropped_total\{metric="sqs_messages",reason="([a-z-]+)"\} (\d+)')
    counts = dict(dropped.findall(scraped))
    assert int(counts["invalid-record"]) >= 3, counts
    assert int(counts["unservable"]) >= 1, counts
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if m.startswith("skipping an invalid stored series")]) == 1, messages
    assert len([m for m in messages if m.startswith("not serving series queue=huge")]) == 1, messages
