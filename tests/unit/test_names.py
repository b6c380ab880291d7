"""One grammar per kind of name: exactly at the limit accepted, one over refused, a trailing newline refused.

The same limits hold wherever a name is checked: the configuration, the series model (which the store
and the server's external-metrics path use) and label selectors.
"""

from __future__ import annotations

from typing import Any

import pytest

from tidegauge import names
from tidegauge.config import Config, ConfigError, SqsSource
from tidegauge.model import METRIC_NAME_PATTERN, InvalidSeriesError, SeriesKey, validate_metric_name
from tidegauge.selectors import SelectorError, parse_selector

PREFIX_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
assert len(PREFIX_253) == 253

# (grammar, longest valid name, a name one character longer)
BOUNDARIES = [
    (names.METRIC_NAME, "m" * 100, "m" * 101),
    (names.SERIES_METRIC_NAME, "M" * 100, "M" * 101),
    (names.LABEL_NAME, "n" * 63, "n" * 64),
    (names.DNS_SUBDOMAIN, PREFIX_253, PREFIX_253 + "e"),
    (names.LABEL_KEY, f"{PREFIX_253}/{'n' * 63}", f"{PREFIX_253}/{'n' * 64}"),
    (names.SERIES_LABEL_KEY, f"{PREFIX_253}/{'n' * 63}", f"{PREFIX_253}/{'n' * 64}"),
    (names.LABEL_VALUE, "v" * 63, "v" * 64),
    (names.SERIES_LABEL_VALUE, "v" * 256, "v" * 257),
    (names.NAMESPACE, "s" * 63, "s" * 64),
    (names.REGION, "us-" + "a" * 27 + "-1", "us-" + "a" * 28 + "-1"),
    (names.ACCOUNT, "1" * 12, "1" * 13),
    (
        names.ROLE_ARN,
        "arn:aws:iam::123456789012:role/" + "r" * (2048 - 31),
        "arn:aws:iam::123456789012:role/" + "r" * (2048 - 30),
    ),
    (
        names.SECRET_ARN,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + "s" * (2048 - 53),
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + "s" * (2048 - 52),
    ),
    (names.SECRET_NAME, "s" * 512, "s" * 513),
    (names.QUEUE_NAME, "q" * 75 + ".fifo", "q" * 76 + ".fifo"),
]
GRAMMAR_NAMES = {id(value): key for key, value in vars(names).items() if isinstance(value, names.Grammar)}
IDS = [GRAMMAR_NAMES[id(grammar)] for grammar, _, _ in BOUNDARIES]


@pytest.mark.parametrize(("grammar", "longest", "too_long"), BOUNDARIES, ids=IDS)
def test_name_exactly_at_the_limit_is_accepted_and_one_over_is_refused(
    grammar: names.Grammar, longest: str, too_long: str
) -> None:
    assert len(longest) == grammar.max_length
    assert grammar.accepts(longest)
    assert grammar.pattern.match(longest)
    assert grammar.pattern.fullmatch(longest)
    assert not grammar.accepts(too_long)
    assert grammar.pattern.match(too_long) is None


NAME_GRAMMARS = [row for row in BOUNDARIES if row[0] is not names.SERIES_LABEL_VALUE]
NAME_IDS = [GRAMMAR_NAMES[id(grammar)] for grammar, _, _ in NAME_GRAMMARS]


@pytest.mark.parametrize(("grammar", "longest", "_too_long"), NAME_GRAMMARS, ids=NAME_IDS)
def test_name_with_a_trailing_newline_is_refused(
    grammar: names.Grammar, longest: str, _too_long: str
) -> None:
    shortened = longest[: len(longest) // 2]
    for name in (longest, shortened) if grammar.accepts(shortened) else (longest,):
        assert not grammar.accepts(name + "\n"), repr(name)
        assert grammar.pattern.match(name + "\n") is None
        assert grammar.pattern.fullmatch(name + "\n") is None


def test_stored_label_value_is_free_text_up_to_its_limit() -> None:
    # A value copied from AWS is stored as it is (the label string escapes it); only its length is bounded.
    assert names.SERIES_LABEL_VALUE.accepts("line\n" * 51)
    assert not names.SERIES_LABEL_VALUE.accepts("line\n" * 52)


def test_document_names_are_names_the_store_and_the_server_accept() -> None:
    # GIVEN the longest metric name and label key a configuration may give
    metric, key = "m" * 100, f"{PREFIX_253}/{'n' * 63}"
    # THEN the series model stores them and the server's path pattern (the provider's) matches it
    assert validate_metric_name(metric) == metric
    assert METRIC_NAME_PATTERN.match(metric)
    assert SeriesKey.of(metric, {key: "v" * 63}).labels == ((key, "v" * 63),)


def test_series_model_refuses_a_metric_name_over_the_document_limit() -> None:
    with pytest.raises(InvalidSeriesError, match="invalid metric name"):
        validate_metric_name("m" * 101)
    assert METRIC_NAME_PATTERN.match("m" * 101) is None


def test_series_model_refuses_a_label_key_prefix_over_253() -> None:
    with pytest.raises(InvalidSeriesError, match="invalid label name"):
        SeriesKey.of("m", {f"{PREFIX_253}e/queue": "orders"})


def _config_with_labels(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "version": 1,
        "redis": {"url": "redis://127.0.0.1:6379/0"},
        "sources": [
            {
                "name": "orders",
                "type": "sqs",
                "region": "eu-west-1",
                "queues": {"names": ["orders"]},
                "labels": labels,
            }
        ],
    }


def test_config_accepts_a_label_key_with_a_253_character_prefix() -> None:
    config = Config.from_mapping(_config_with_labels({f"{PREFIX_253}/{'n' * 63}": "v" * 63}))
    source = config.source("orders")
    assert isinstance(source, SqsSource)
    assert dict(source.labels) == {f"{PREFIX_253}/{'n' * 63}": "v" * 63}


def test_config_refuses_a_label_key_prefix_over_253_even_with_a_short_name() -> None:
    # GIVEN a 254-character prefix and a 1-character name (318 > 317 is not what fails: the prefix is)
    key = f"{PREFIX_253}e/n"
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(_config_with_labels({key: "v"}))
    (issue,) = caught.value.errors
    assert issue.field == f"sources[0].labels.{key}"
    assert "not a valid label key" in issue.problem
    assert issue.fix == names.LABEL_KEY.fix


def test_config_refuses_a_metric_name_over_100() -> None:
    data = _config_with_labels({})
    data["sources"][0]["metric"] = "m" * 101
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(data)
    assert [issue.field for issue in caught.value.errors] == ["sources[0].metric"]
    data["sources"][0]["metric"] = "m" * 100
    assert Config.from_mapping(data).metric_names() == ("m" * 100,)


def test_selectors_use_the_same_label_limits() -> None:
    key = f"{PREFIX_253}/{'n' * 63}"
    assert parse_selector(f"{key}={'v' * 63}").matches({key: "v" * 63})
    for text in (f"{PREFIX_253}e/n=v", f"{'n' * 64}=v", f"n={'v' * 64}"):
        with pytest.raises(SelectorError):
            parse_selector(text)


def test_a_missing_or_empty_name_field_gets_the_grammars_fix() -> None:
    # GIVEN an SQS source without a name and with an empty region
    data = _config_with_labels({})
    del data["sources"][0]["name"]
    data["sources"][0]["region"] = " "
    # WHEN it is validated THEN each issue says how to write that kind of name
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(data)
    fixes = {issue.field: (issue.problem, issue.fix) for issue in caught.value.errors}
    assert fixes["sources[0].name"] == (
        "is required",
        "use at most 63 lower-case letters, digits and '-', starting and ending alphanumeric",
    )
    assert fixes["sources[0].region"] == ("is empty", names.REGION.fix)


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/orders", ("123456789012", "orders", "eu-west-1")),
        (
            "https://eu-west-1.queue.amazonaws.com/123456789012/jobs.fifo",
            ("123456789012", "jobs.fifo", "eu-west-1"),
        ),
        (
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders",
            ("123456789012", "orders", "cn-north-1"),
        ),
        ("http://127.0.0.1:5000/123456789012/orders", ("123456789012", "orders", None)),
    ],
)
def test_queue_url_gives_account_name_and_the_region_its_host_names(
    url: str, parts: tuple[str, str, str | None]
) -> None:
    parsed = names.queue_url(url)

    assert parsed is not None
    assert (parsed.account, parsed.name, parsed.region) == parts
    assert names.queue_name(url) == parts[1]


@pytest.mark.parametrize(
    "url",
    [
        "orders",
        "ftp://sqs.eu-west-1.amazonaws.com/123456789012/orders",
        "https://sqs.eu-west-1.amazonaws.com/orders",
        "https://sqs.eu-west-1.amazonaws.com/12345/orders",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/orders\n",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/a/b",
    ],
)
def test_queue_url_refuses_what_is_not_a_queue_url(url: str) -> None:
    assert names.queue_url(url) is None


def test_queue_name_of_a_bare_name_is_itself() -> None:
    assert names.queue_name("orders") == "orders"
