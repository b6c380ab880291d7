"""The demo's own AWS calls against moto: set-up, producers, consumers, the Aurora CPU publisher.

These are the simulated world's calls, counted apart from the collectors' so the summary can show
what tidegauge itself costs. The queue depth read here is the demo's view of the truth, independent
of what the collectors sampled.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3.session
from botocore.config import Config

from tidegauge.sources.aws import ApiCallCounter

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef
    from mypy_boto3_ssm.client import SSMClient

FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
"""moto accepts any credentials; these keep real ones out of the demo."""
BATCH_SIZE = 10
"""SQS's limit per SendMessageBatch, DeleteMessageBatch and ReceiveMessage call."""
VISIBILITY_TIMEOUT_SECONDS = 30
"""Longer than any step: a received message stays in flight until the demo deletes it."""
CPU_NAMESPACE = "AWS/RDS"
CPU_METRIC_NAME = "CPUUtilization"
CPU_DIMENSION = "DBClusterIdentifier"


@dataclass(frozen=True)
class QueueDepth:
    """ApproximateNumberOfMessages, ...NotVisible and ...Delayed."""

    visible: int
    in_flight: int
    delayed: int


class DemoAws:
    """Clients for moto with fake credentials; every call counted by operation."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        session = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=10
        )
        self.counter = ApiCallCounter()
        self.sqs: SQSClient = session.client("sqs", endpoint_url=endpoint_url, config=config)
        self.cloudwatch: CloudWatchClient = session.client(
            "cloudwatch", endpoint_url=endpoint_url, config=config
        )
        self.ssm: SSMClient = session.client("ssm", endpoint_url=endpoint_url, config=config)
        for client in (self.sqs, self.cloudwatch, self.ssm):
            self.counter.attach(client)
        self.queue_url = ""
        self._sent = 0

    def calls(self) -> dict[str, int]:
        """API calls made so far, by operation."""
        return dict(self.counter.snapshot().totals)

    def create_queue(self, name: str) -> str:
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        return self.queue_url

    def put_parameter(self, name: str, value: str) -> None:
        """Store the config where the collector functions read it, as the SAM deployment does."""
        self.ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    def send(self, count: int, *, delay_every: int, delay_seconds: int) -> None:
        """Send ``count`` messages in batches; every ``delay_every``-th one with ``DelaySeconds``."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for _ in range(count):
            self._sent += 1
            entry: SendMessageBatchRequestEntryTypeDef = {
                "Id": str(len(entries)),
                "MessageBody": json.dumps({"order": self._sent}),
            }
            if delay_every and self._sent % delay_every == 0:
                entry["DelaySeconds"] = delay_seconds
            entries.append(entry)
            if len(entries) == BATCH_SIZE:
                self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                entries = []
        if entries:
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def receive(self, up_to: int) -> list[str]:
        """Receive at most ``up_to`` messages (short polling); their receipt handles."""
        handles: list[str] = []
        while len(handles) < up_to:
            wanted = min(BATCH_SIZE, up_to - len(handles))
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
                WaitTimeSeconds=0,
            )
            messages = response.get("Messages", [])
            handles.extend(message["ReceiptHandle"] for message in messages)
            if len(messages) < wanted:
                break
        return handles

    def delete(self, handles: list[str]) -> None:
        """Delete processed messages in batches."""
        for start in range(0, len(handles), BATCH_SIZE):
            batch = handles[start : start + BATCH_SIZE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(batch)],
            )

    def queue_depth(self) -> QueueDepth:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return QueueDepth(
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        )

    def publish_cpu(self, cluster: str, points: Sequence[tuple[float, float]]) -> None:
        """High-resolution (1 s) CPUUtilization datapoints of the Aurora cluster: (Unix time, percent)."""
        self.cloudwatch.put_metric_data(
            Namespace=CPU_NAMESPACE,
            MetricData=[
                {
                    "MetricName": CPU_METRIC_NAME,
                    "Dimensions": [{"Name": CPU_DIMENSION, "Value": cluster}],
                    "Timestamp": datetime.datetime.fromtimestamp(at, tz=datetime.UTC),
                    "Value": percent,
                    "Unit": "Percent",
                    "StorageResolution": 1,
                }
                for at, percent in points
            ],
        )

    def publish_deleted(self, queue: str, points: Sequence[tuple[float, int]]) -> None:
        """High-resolution NumberOfMessagesDeleted datapoints of the queue: (Unix time, count), as SQS
        publishes them (moto's SQS does not)."""
        self.cloudwatch.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {
                    "MetricName": "NumberOfMessagesDeleted",
                    "Dimensions": [{"Name": "QueueName", "Value": queue}],
                    "Timestamp": datetime.datetime.fromtimestamp(at, tz=datetime.UTC),
                    "Value": float(count),
                    "Unit": "Count",
                    "StorageResolution": 1,
                }
                for at, count in points
            ],
        )

    def close(self) -> None:
        for client in (self.sqs, self.cloudwatch, self.ssm):
            client.close()
