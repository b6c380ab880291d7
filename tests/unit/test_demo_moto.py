"""The demo's moto host: its SQS speed-up keeps the queue's behaviour."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models

from tidegauge.demo.moto_process import speed_up_sqs


@pytest.fixture
def sped_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patch applied for this test only (monkeypatch restores the originals)."""
    monkeypatch.setattr(models, "unix_time_millis", models.unix_time_millis)  # type: ignore[attr-defined]
    monkeypatch.setattr(
        models.SQSBackend,
        "is_message_valid_based_on_retention_period",
        models.SQSBackend.is_message_valid_based_on_retention_period,
    )
    assert speed_up_sqs()


def test_states_and_retention_behave_as_before(sped_up: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        # GIVEN a queue with five messages, one delayed
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "MessageBody": "x", "DelaySeconds": 30 if index == 0 else 0}
                for index in range(5)
            ],
        )

        # WHEN two are received
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)

        # THEN the queue counts them by state as SQS does
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert len(received["Messages"]) == 2
        assert attributes["ApproximateNumberOfMessages"] == "2"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"

        # AND messages past their retention period are not delivered
        later = time.time() + 120
        monkeypatch.setattr(time, "time", lambda: later)
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
