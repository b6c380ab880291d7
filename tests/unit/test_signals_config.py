"""The serving options of ``metrics.<name>``: last known good, window and keep-alive, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_config import document, errors_of, only_error
from tidegauge.config import Config, Fallback
from tidegauge.config.model import DerivedMetric, LastKnownGood, Window


def policy_of(entry: dict[str, Any]) -> Any:
    return Config.from_mapping(document(metrics={"sqs_messages": entry})).metric_policy("sqs_messages")


def test_last_known_good_alone_has_no_fixed_fallback() -> None:
    policy = policy_of({"fallback": {"mode": "last_known_good", "max_age_seconds": 600}})

    assert (policy.last_known_good, policy.fallback) == (LastKnownGood(max_age_seconds=600.0), None)


def test_last_known_good_with_a_fixed_value_keeps_both() -> None:
    policy = policy_of(
        {"fallback": {"mode": "last_known_good", "max_age_seconds": 60, "value": 0, "after_seconds": 90}}
    )

    assert policy.last_known_good == LastKnownGood(max_age_seconds=60.0)
    assert policy.fallback == Fallback(value=0.0, after_seconds=90.0)


def test_last_known_good_needs_max_age_seconds() -> None:
    error = only_error(document(metrics={"sqs_messages": {"fallback": {"mode": "last_known_good"}}}))

    assert (error.field, error.problem) == ("metrics.sqs_messages.fallback.max_age_seconds", "is required")


def test_last_known_good_with_half_a_fixed_value_names_the_missing_half() -> None:
    data = document(
        metrics={"sqs_messages": {"fallback": {"mode": "last_known_good", "max_age_seconds": 9, "value": 1}}}
    )

    error = only_error(data)

    assert (error.field, error.problem) == ("metrics.sqs_messages.fallback.after_seconds", "is required")


def test_unknown_fallback_mode_suggests_the_closest() -> None:
    error = only_error(document(metrics={"sqs_messages": {"fallback": {"mode": "last_good"}}}))

    assert error.field == "metrics.sqs_messages.fallback.mode"
    assert "did you mean 'last_known_good'?" in error.problem


def test_max_age_seconds_in_a_fixed_fallback_is_an_error() -> None:
    data = document(
        metrics={"sqs_messages": {"fallback": {"value": 0, "after_seconds": 5, "max_age_seconds": 9}}}
    )

    error = only_error(data)

    assert error.field == "metrics.sqs_messages.fallback.max_age_seconds"
    assert "mode: last_known_good" in error.fix


def test_window_and_keep_alive_are_read() -> None:
    policy = policy_of({"window": {"seconds": 120, "function": "p90"}, "keep_alive_seconds": 300})

    assert (policy.window, policy.keep_alive_seconds) == (Window(seconds=120.0, function="p90"), 300.0)


@pytest.mark.parametrize(
    ("window", "field", "words"),
    [
        ({"seconds": 60, "function": "maxx"}, "function", "did you mean 'max'"),
        ({"function": "max"}, "seconds", "is required"),
        ({"seconds": 0, "function": "max"}, "seconds", "greater than 0"),
        ({"seconds": 60}, "function", "is required"),
        ({"seconds": 60, "function": "max", "size": 3}, "size", "unknown key"),
    ],
)
def test_bad_window_names_the_field(window: dict[str, Any], field: str, words: str) -> None:
    error = only_error(document(metrics={"sqs_messages": {"window": window}}))

    assert error.field == f"metrics.sqs_messages.window.{field}"
    assert words in error.problem


def test_keep_alive_must_be_positive() -> None:
    error = errors_of(document(metrics={"sqs_messages": {"keep_alive_seconds": -1}}))

    assert error.field == "metrics.sqs_messages.keep_alive_seconds"


PRESSURE = 'max(sqs_messages{queue="orders"} / 100, aurora_cpu_percent{cluster="prod"} / 70)'


def test_derived_metrics_are_metric_names_and_may_be_exposed() -> None:
    data = document(
        derived={
            "orders_pressure": PRESSURE,
            "depth": {"expression": "sum(sqs_messages)", "unit": "messages"},
        },
        exposure=[{"namespaces": ["shop"], "metrics": ["orders_pressure"]}],
    )

    config = Config.from_mapping(data)

    assert config.metric_names() == ("aurora_cpu_percent", "depth", "orders_pressure", "sqs_messages")
    assert config.derived["depth"] == DerivedMetric(expression="sum(sqs_messages)", unit="messages")
    assert config.exposure_for("shop", "orders_pressure").allowed


def test_derived_expression_errors_give_the_column_and_what_was_expected() -> None:
    error = only_error(document(derived={"orders_pressure": "max(sqs_messages / 100"}))

    assert error.field == "derived.orders_pressure.expression"
    assert error.problem.startswith("at column 23: expected ')' closing max(, found the end")
    assert "docs/signals.md" in error.fix


@pytest.mark.parametrize(
    ("derived", "field", "words"),
    [
        ({"p": "sqs_mesages / 100"}, "derived.p.expression", "did you mean 'sqs_messages'?"),
        ({"p": "sqs_messages", "q": "p * 2"}, "derived.q.expression", "reads the derived metric 'p'"),
        ({"sqs_messages": "aurora_cpu_percent"}, "derived.sqs_messages", "a source already produces"),
        ({"Bad-Name": "sqs_messages"}, "derived.Bad-Name", "not a valid metric name"),
        ({"p": {"expresion": "sqs_messages"}}, "derived.p.expresion", "did you mean 'expression'?"),
        ({"p": '__import__("os")'}, "derived.p.expression", "unknown function '__import__'"),
    ],
)
def test_bad_derived_metric_names_the_field(derived: dict[str, Any], field: str, words: str) -> None:
    error = errors_of(document(derived=derived))

    assert error.field == field
    assert words in error.problem


def test_config_check_summary_shows_a_derived_metric_by_its_expression() -> None:
    from tidegauge.ops.config_check import summary

    text = summary(Config.from_mapping(document(derived={"orders_pressure": PRESSURE})))

    assert f"metric orders_pressure: derived = {PRESSURE}" in text.splitlines()
    assert "valid: 2 sources, 3 metrics" in text


def test_an_objects_rule_may_name_a_derived_metric() -> None:
    rule = {"metric": "orders_pressure", "resource": "deployments.apps", "namespace": "shop", "name": "w"}

    config = Config.from_mapping(document(derived={"orders_pressure": PRESSURE}, objects=[rule]))

    assert [r.metric for r in config.objects] == ["orders_pressure"]
