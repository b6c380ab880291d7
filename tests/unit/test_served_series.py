"""The per-series gauges of the server's telemetry stay bounded, the most recently served kept."""

from __future__ import annotations

from tidegauge.server.telemetry import ServedSeries, Telemetry
from tidegauge.server.types import ExternalMetricValue


def test_served_series_keep_the_most_recently_served_within_the_bound() -> None:
    # GIVEN a bound of 2
    served = ServedSeries(limit=2)

    # WHEN three series are served, the first one again last
    served.record([ExternalMetricValue("m", {"q": "a"}, 100.0, 1.0)])
    served.record([ExternalMetricValue("m", {"q": "b"}, 100.0, 2.0)])
    served.record(
        [ExternalMetricValue("m", {"q": "a"}, 101.0, 3.0), ExternalMetricValue("m", {"q": "c"}, 100.0, 4.0)]
    )

    # THEN the least recently served (b) is forgotten and counted; a's value is the newest
    assert served.items() == [(("m", "q=a"), (3.0, 101.0)), (("m", "q=c"), (4.0, 100.0))]
    assert served.forgotten == 1


def test_served_series_are_exported_with_value_and_age() -> None:
    # GIVEN telemetry at t=130 that served one series with source time 100
    telemetry = Telemetry(clock=lambda: 130.0)
    telemetry.served.record([ExternalMetricValue("sqs_messages", {"queue": "orders"}, 100.0, 1250.0)])

    # WHEN it is scraped
    text = telemetry.render().decode()

    # THEN the value and age gauges carry the series
    assert 'tidegauge_served_series_value{metric="sqs_messages",series="queue=orders"} 1250.0' in text
    assert 'tidegauge_served_series_age_seconds{metric="sqs_messages",series="queue=orders"} 30.0' in text
