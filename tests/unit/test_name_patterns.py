"""Name patterns match whole strings: a trailing newline is not part of a valid name."""

from __future__ import annotations

import pytest

from tidegauge.model import InvalidSeriesError, SeriesKey, validate_metric_name


@pytest.mark.parametrize("name", ["sqs_messages\n", "sqs_messages\r\n", "db_load\n"])
def test_metric_name_with_a_trailing_newline_is_refused(name: str) -> None:
    with pytest.raises(InvalidSeriesError, match="invalid metric name"):
        validate_metric_name(name)


def test_label_key_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidSeriesError, match="invalid label name"):
        SeriesKey.of("sqs_messages", {"queue\n": "orders"})


def test_valid_names_still_pass() -> None:
    assert validate_metric_name("sqs_messages") == "sqs_messages"
    assert SeriesKey.of("sqs_messages", {"example.com/queue": "orders"}).labels == (
        ("example.com/queue", "orders"),
    )
