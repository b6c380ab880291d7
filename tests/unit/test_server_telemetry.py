"""Prometheus text exposition of the server's own metrics."""

from __future__ import annotations

from tidegauge.server.telemetry import Telemetry


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    telemetry = Telemetry()
    for seconds in (0.0005, 0.003, 7.0):
        telemetry.latency.observe(seconds, "200", "external_metric")
    text = telemetry.render().decode()
    prefix = 'tidegauge_http_request_duration_seconds_bucket{code="200",kind="external_metric"'
    assert f'{prefix},le="0.001"}} 1' in text
    assert f'{prefix},le="0.005"}} 2' in text
    assert f'{prefix},le="5"}} 2' in text
    assert f'{prefix},le="+Inf"}} 3' in text
    assert 'tidegauge_http_request_duration_seconds_count{code="200",kind="external_metric"} 3' in text


def test_counters_escape_label_values_and_ages_use_the_clock() -> None:
    telemetry = Telemetry({"m": 90.0}, clock=lambda: 100.0)
    telemetry.authentications.inc('we"ird', "x\\y")
    text = telemetry.render().decode()
    assert 'tidegauge_authentication_total{method="we\\"ird",outcome="x\\\\y"} 1' in text
    assert 'tidegauge_metric_newest_sample_age_seconds{metric="m"} 10' in text
    assert "# TYPE tidegauge_redis_errors_total counter" in text
