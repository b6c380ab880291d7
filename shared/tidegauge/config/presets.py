"""Presets: well-known CloudWatch metrics a query names with ``preset`` and ``identifier`` only."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Preset:
    """A well-known CloudWatch metric: ``identifier`` fills ``dimension`` and becomes label ``label``."""

    metric: str
    namespace: str
    metric_name: str
    stat: str
    dimension: str
    label: str
    description: str
    period_seconds: int = 60
    missing_as_zero: bool = False
    scale: float = 1.0


PRESETS: Final[Mapping[str, Preset]] = MappingProxyType(
    {
        "aurora_cpu": Preset(
            metric="aurora_cpu_percent",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            stat="Average",
            dimension="DBClusterIdentifier",
            label="cluster",
            description="CPU utilisation of an Aurora cluster, percent",
        ),
        "rds_cpu": Preset(
            metric="rds_cpu_percent",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            stat="Average",
            dimension="DBInstanceIdentifier",
            label="instance",
            description="CPU utilisation of an RDS instance, percent",
        ),
        "rds_connections": Preset(
            metric="rds_connections",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            stat="Average",
            dimension="DBInstanceIdentifier",
            label="instance",
            description="client connections to an RDS instance",
        ),
        "aurora_connections": Preset(
            metric="aurora_connections",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            stat="Average",
            dimension="DBClusterIdentifier",
            label="cluster",
            description="client connections to an Aurora cluster",
        ),
        "rds_db_load": Preset(
            metric="rds_db_load",
            namespace="AWS/RDS",
            metric_name="DBLoad",
            stat="Average",
            dimension="DBInstanceIdentifier",
            label="instance",
            description="average active sessions of an RDS instance (absent when idle, served as 0)",
            missing_as_zero=True,
        ),
        "aurora_db_load": Preset(
            metric="aurora_db_load",
            namespace="AWS/RDS",
            metric_name="DBLoad",
            stat="Average",
            dimension="DBClusterIdentifier",
            label="cluster",
            description="average active sessions of an Aurora cluster (absent when idle, served as 0)",
            missing_as_zero=True,
        ),
        "dynamodb_read_capacity": Preset(
            metric="dynamodb_consumed_read_per_second",
            namespace="AWS/DynamoDB",
            metric_name="ConsumedReadCapacityUnits",
            stat="Sum",
            dimension="TableName",
            label="table",
            description="read capacity units a DynamoDB table consumes per second",
            scale=1 / 60,
        ),
        "dynamodb_write_capacity": Preset(
            metric="dynamodb_consumed_write_per_second",
            namespace="AWS/DynamoDB",
            metric_name="ConsumedWriteCapacityUnits",
            stat="Sum",
            dimension="TableName",
            label="table",
            description="write capacity units a DynamoDB table consumes per second",
            scale=1 / 60,
        ),
        "sqs_oldest_message_age": Preset(
            metric="sqs_oldest_message_age_seconds",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            stat="Maximum",
            dimension="QueueName",
            label="queue",
            description="age of the oldest message in an SQS queue, seconds",
        ),
        "sqs_sent": Preset(
            metric="sqs_sent_per_second",
            namespace="AWS/SQS",
            metric_name="NumberOfMessagesSent",
            stat="Sum",
            dimension="QueueName",
            label="queue",
            description="messages sent to an SQS queue per second (arrival rate)",
            missing_as_zero=True,
            scale=1 / 60,
        ),
        "sqs_deleted": Preset(
            metric="sqs_deleted_per_second",
            namespace="AWS/SQS",
            metric_name="NumberOfMessagesDeleted",
            stat="Sum",
            dimension="QueueName",
            label="queue",
            description="messages deleted from an SQS queue per second (drain rate: processed messages)",
            missing_as_zero=True,
            scale=1 / 60,
        ),
    }
)
