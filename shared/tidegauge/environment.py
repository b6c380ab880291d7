"""Names of the environment variables tidegauge reads, in one place.

An explicit argument (flag, function parameter) always beats the environment.
"""

from __future__ import annotations

REDIS_URL = "TIDEGAUGE_REDIS_URL"
"""Redis URL (``redis://``, ``rediss://``); overrides ``redis.url`` of the config."""

REDIS_SECRET = "TIDEGAUGE_REDIS_SECRET"
"""Secrets Manager secret id/ARN holding the Redis AUTH token (collectors)."""

CONFIG_PARAMETER = "TIDEGAUGE_CONFIG_PARAMETER"
"""SSM parameter name holding the YAML/JSON config (collectors in Lambda)."""

CONFIG_FILE = "TIDEGAUGE_CONFIG"
"""Path of a YAML/JSON config file (CLI, server)."""

AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
"""Standard boto3 variable: a local moto server or LocalStack standing in for AWS."""

REDIS_PASSWORD = "TIDEGAUGE_REDIS_PASSWORD"
"""Redis AUTH token for the server (e.g. from a Secret); wins over a password in the URL."""

REDIS_URL_FILE = "TIDEGAUGE_REDIS_URL_FILE"
"""Path of a file holding the Redis URL (a mounted Secret key), for the server: re-read while it runs, and
a changed URL (e.g. a rotated password) is used from the next connection on, without a restart."""

DELEGATE_EXTERNAL_METRICS = "TIDEGAUGE_DELEGATE_EXTERNAL_METRICS"
"""Base URL of the adapter that external metrics the server does not hold are forwarded to."""

DELEGATE_CA_FILE = "TIDEGAUGE_DELEGATE_CA_FILE"
"""CA bundle verifying the delegated adapter's serving certificate."""

DELEGATE_TOKEN_FILE = "TIDEGAUGE_DELEGATE_TOKEN_FILE"
"""Bearer token file the server presents to the delegated adapter (default: the ServiceAccount token)."""

DELEGATE_TIMEOUT = "TIDEGAUGE_DELEGATE_TIMEOUT"
"""Deadline of one forwarded request, in seconds."""

KEDA_SCALER_PORT = "TIDEGAUGE_KEDA_SCALER_PORT"
"""Port of KEDA's external scaler (gRPC, TLS) that the server also serves; unset or 0: not served."""

KEDA_SCALER_CLIENT_CA_FILE = "TIDEGAUGE_KEDA_SCALER_CLIENT_CA_FILE"
"""CA bundle that KEDA's client certificate must chain to, on the external scaler port."""
