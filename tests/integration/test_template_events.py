"""The event rule's pattern, resolved for given parameters, as a rule on moto's EventBridge with a queue
as its target: which events trigger an immediate collection, and that the stack's own alarms never do.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest

from tests.integration.test_template import transformed  # noqa: F401  (the translated template fixture)
from tests.support.collectors import load_event, mock_aws_for

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}


def resolve(value: Any, parameters: Mapping[str, str], conditions: Mapping[str, bool]) -> Any:
    """``value`` with Fn::If, Ref and Fn::Sub evaluated as CloudFormation would for ``parameters``."""
    names = {**PSEUDO, **parameters}
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return resolve(when_true if conditions[condition] else when_false, parameters, conditions)
        if set(value) == {"Ref"}:
            return names[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda match: names[match.group(1)], value["Fn::Sub"])
        return {key: resolve(item, parameters, conditions) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, parameters, conditions) for item in value]
    return value


def pattern_for(template: dict[str, Any], alarm_name_prefix: str) -> str:
    pattern = template["Resources"]["CollectOnEventRule"]["Properties"]["EventPattern"]
    parameters = {"EnvironmentName": "dev", "AlarmNamePrefix": alarm_name_prefix}
    return json.dumps(resolve(pattern, parameters, {"HasAlarmNamePrefix": alarm_name_prefix != ""}))


def alarm_event(name: str, *, composite: bool = False) -> dict[str, Any]:
    """The recorded SQS alarm event, renamed (and turned into a composite alarm's)."""
    event = copy.deepcopy(load_event("alarm_state_change_sqs.json"))
    event["resources"] = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"]
    event["detail"]["alarmName"] = name
    if composite:
        event["detail"]["configuration"] = {"alarmRule": "ALARM(orders-backlog-high) OR ALARM(db-load)"}
    return event


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws_for(monkeypatch, REGION):
        yield boto3.client("events", region_name=REGION)


def matches(events: Any, pattern: str, event: dict[str, Any]) -> bool:
    """Whether a rule with ``pattern`` delivers ``event`` (put on the default bus) to its target."""
    sqs = boto3.client("sqs", region_name=REGION)
    name = f"rule-{len(sqs.list_queues().get('QueueUrls', []))}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=pattern, State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event.get("resources", []),
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    delivered = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    events.remove_targets(Rule=name, Ids=["queue"])
    events.delete_rule(Name=name)
    return len(delivered) == 1


@pytest.mark.parametrize("prefix", ["", "tidegauge-"])
def test_own_alarms_never_trigger_a_collection(
    events: Any,
    transformed: dict[str, Any],  # noqa: F811
    prefix: str,
) -> None:
    # GIVEN the rule for an empty prefix, and for a prefix that covers the stack's own alarm names
    pattern = pattern_for(transformed, prefix)
    # WHEN this stack's stale-data alarm goes to ALARM
    own = alarm_event("tidegauge-dev-collect_sqs-no-samples")
    # THEN no collection is triggered, while another alarm with the prefix still triggers one
    assert not matches(events, pattern, own)
    assert matches(events, pattern, alarm_event("tidegauge-orders-backlog-high"))


def test_composite_alarms_trigger_a_collection_only_when_a_prefix_names_them(
    events: Any,
    transformed: dict[str, Any],  # noqa: F811
) -> None:
    # GIVEN the rule without AlarmNamePrefix
    pattern = pattern_for(transformed, "")
    # THEN a metric alarm of the account triggers a collection, a composite alarm (every source) does not
    assert matches(events, pattern, alarm_event("orders-backlog-high"))
    assert not matches(events, pattern, alarm_event("orders-or-db", composite=True))
    # AND the custom collect event still does
    assert matches(events, pattern, load_event("custom_collect.json"))
    # GIVEN the rule with AlarmNamePrefix "orders-"
    pattern = pattern_for(transformed, "orders-")
    # THEN alarms named with it trigger a collection, composite ones too (the prefix chose them)
    assert matches(events, pattern, alarm_event("orders-backlog-high"))
    assert matches(events, pattern, alarm_event("orders-or-db", composite=True))
    assert not matches(events, pattern, alarm_event("billing-high"))
