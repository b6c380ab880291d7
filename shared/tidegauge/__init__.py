"""tidegauge: cloud signals (SQS depth, CloudWatch database load) for the Kubernetes HPA, through Redis."""

from __future__ import annotations

__version__ = "0.1.0"
