"""The server's own metrics, read back with the Prometheus text parser as a scraper reads them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tidegauge.server.telemetry import Telemetry


def samples(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    text = telemetry.render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    telemetry = Telemetry()
    for seconds in (0.0005, 0.003, 7.0):
        telemetry.latency.observe(seconds, "200", "external_metric")
    scraped = samples(telemetry)

    def bucket(le: str) -> float:
        labels = (("code", "200"), ("kind", "external_metric"), ("le", le))
        return scraped[("tidegauge_http_request_duration_seconds_bucket", labels)]

    assert (bucket("0.001"), bucket("0.005"), bucket("5.0"), bucket("+Inf")) == (1, 2, 2, 3)
    count = ("tidegauge_http_request_duration_seconds_count", (("code", "200"), ("kind", "external_metric")))
    assert scraped[count] == 3


def test_counters_keep_odd_label_values_and_ages_use_the_clock() -> None:
    telemetry = Telemetry({"m": 90.0}, clock=lambda: 100.0)
    telemetry.authentications.inc('we"ird', "x\\y")
    telemetry.authentications.inc('we"ird', "x\\y")
    scraped = samples(telemetry)
    assert scraped[("tidegauge_authentication_total", (("method", 'we"ird'), ("outcome", "x\\y")))] == 2
    assert telemetry.authentications.value('we"ird', "x\\y") == 2
    assert scraped[("tidegauge_metric_newest_sample_age_seconds", (("metric", "m"),))] == 10
    assert "# TYPE tidegauge_redis_errors_total counter" in telemetry.render().decode()


def test_gauges_of_the_moment_are_read_at_scrape_time() -> None:
    # GIVEN Redis down, then up, and a changing number of connections
    up, connections = [False], [3]
    telemetry = Telemetry(redis_up=lambda: up[0], open_connections=lambda: connections[0])
    assert samples(telemetry)[("tidegauge_redis_up", ())] == 0
    up[0], connections[0] = True, 5
    scraped = samples(telemetry)
    # THEN each scrape says what is true then, and the process metrics come along
    assert scraped[("tidegauge_redis_up", ())] == 1
    assert scraped[("tidegauge_connections_open", ())] == 5
    assert scraped[("process_resident_memory_bytes", ())] > 0
    assert not [name for name, _labels in scraped if name.endswith("_created")]
