"""The collectors' stand-in for EventBridge + Lambda: scheduled events, a counting-down context."""

from __future__ import annotations

from typing import Any

from tests.support.clock import FakeClock
from tidegauge.demo.collector_process import LocalContext, invoke_on_schedule, scheduled_event
from tidegauge.sources.events import parse_event


def test_the_context_counts_down_from_the_timeout() -> None:
    # GIVEN a context of a function with a 12 s timeout
    clock = FakeClock(100.0)
    context = LocalContext(function_name="f", timeout_seconds=12, region="us-east-1", clock=clock)

    # WHEN time passes
    remaining = [context.get_remaining_time_in_millis()]
    clock.now += 4.5
    remaining.append(context.get_remaining_time_in_millis())
    clock.now += 20
    remaining.append(context.get_remaining_time_in_millis())

    # THEN the remaining time falls with it, never below zero, and the ARN names the function
    assert remaining == [12000, 7500, 0]
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:f"


def test_the_event_is_the_schedule_rule_s() -> None:
    # GIVEN the event the demo sends
    event = scheduled_event("tidegauge-demo-collect-sqs-schedule", "us-east-1")

    # WHEN the collectors parse it
    trigger = parse_event(event)

    # THEN it is a scheduled invocation, sampled in rounds
    assert trigger.kind == "schedule"
    assert not trigger.single_round
    assert event["resources"] == [
        "arn:aws:events:us-east-1:123456789012:rule/tidegauge-demo-collect-sqs-schedule"
    ]


def test_invocations_follow_the_schedule_and_survive_a_failure() -> None:
    # GIVEN a handler that takes 2 s, and fails on its second invocation
    clock = FakeClock(100.0)
    started: list[float] = []

    def handler(event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
        started.append(clock.now)
        assert context.get_remaining_time_in_millis() == 5000
        clock.now += 2
        if len(started) == 2:
            raise RuntimeError("Redis unreachable")
        return {"ok": True}

    # WHEN it is invoked every 5 s, four times
    count = invoke_on_schedule(
        handler,
        function_name="f",
        every_seconds=5,
        region="us-east-1",
        invocations=4,
        clock=clock,
        sleep=clock.sleep,
    )

    # THEN every invocation started on the 5 s grid, the failure included
    assert count == 4
    assert started == [100, 105, 110, 115]
