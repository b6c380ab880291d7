"""The demo's options, its verdict, and the environment its child processes get."""

from __future__ import annotations

import argparse

import pytest

from tidegauge.demo.command import add_arguments, build_scenario
from tidegauge.demo.processes import child_environment
from tidegauge.demo.report import verdict
from tidegauge.demo.timeline import TimelinePoint


def parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(options))


def test_the_default_run_is_ten_minutes_at_five_times() -> None:
    # GIVEN no options
    # WHEN the scenario is built
    scenario, steps = build_scenario(parse())

    # THEN it is the default scenario, two wall-clock minutes long
    assert (scenario.simulated_seconds, scenario.time_compression, steps) == (600, 5, 600)
    assert scenario.wall_seconds == 120


def test_short_and_explicit_options_combine() -> None:
    # GIVEN --short with an explicit compression and seed
    scenario, steps = build_scenario(parse("--short", "--time-compression", "10", "--seed", "3"))

    # THEN the short duration is kept and the explicit values win
    assert (scenario.simulated_seconds, scenario.time_compression, scenario.seed, steps) == (480, 10, 3, 480)


def test_duration_zero_needs_keep_running() -> None:
    # GIVEN --duration 0 alone, then with --keep-running
    # WHEN the scenario is built
    # THEN alone it is refused, naming the missing option; with it there is nothing to step
    with pytest.raises(ValueError, match="--keep-running"):
        build_scenario(parse("--duration", "0"))
    _, steps = build_scenario(parse("--duration", "0", "--keep-running"))
    assert steps == 0


def test_a_duration_too_short_for_the_story_is_refused() -> None:
    with pytest.raises(ValueError, match="--duration"):
        build_scenario(parse("--duration", "120"))


def points(desired: list[int]) -> list[TimelinePoint]:
    return [TimelinePoint(float(t), 10 * d, 0, 0, None, None, None, d, d) for t, d in enumerate(desired)]


@pytest.mark.parametrize(
    ("desired", "closed", "problem"),
    [
        ([1, 3, 3, 1], True, None),
        ([1, 1, 1], False, "never scaled up"),
        ([1, 4, 4], False, "never scaled down"),
    ],
)
def test_the_loop_is_closed_only_by_a_scale_up_and_a_scale_down(
    desired: list[int], closed: bool, problem: str | None
) -> None:
    # GIVEN a run's replicas over time
    # WHEN it is judged
    outcome = verdict(points(desired))

    # THEN it passes only with both directions, and otherwise says what was missing
    assert outcome.closed is closed
    if problem is not None:
        assert any(problem in text for text in outcome.problems)


def test_children_do_not_inherit_aws_or_tidegauge_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a shell with real AWS credentials, another tidegauge deployment and a cluster identity
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "https://sqs.example.com")
    monkeypatch.setenv("TIDEGAUGE_REDIS_SECRET", "prod-secret")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("HOME_GROWN", "kept")

    # WHEN a child's environment is built
    env = child_environment({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})

    # THEN only what the demo sets reaches it
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["HOME_GROWN"] == "kept"
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_SQS", "TIDEGAUGE_REDIS_SECRET", "KUBERNETES_SERVICE_HOST"):
        assert name not in env


def test_the_backlog_is_an_object_metric_unless_external_backlog_is_asked() -> None:
    # GIVEN no option THEN the HPA reads the backlog as Deployment demo/orders-worker's Object metric
    scenario, _ = build_scenario(parse())
    assert scenario.backlog_object == "orders-worker"
    # AND --external-backlog reads it as an External metric, as the CPU
    scenario, _ = build_scenario(parse("--external-backlog"))
    assert scenario.backlog_object is None
