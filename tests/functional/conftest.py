"""What every handler test needs: Lambda's environment over mock AWS, and a real Redis to read back."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import boto3
import pytest

from tests.support.collectors import mock_aws_for
from tidegauge.localredis import RedisServer
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store

REGION = "eu-west-1"
PARAMETER = "/tidegauge/config"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The handler module points the ``tidegauge`` logger at Powertools' JSON handler; undo that after."""
    package_logger = logging.getLogger("tidegauge")
    saved = (list(package_logger.handlers), package_logger.propagate, package_logger.level)
    yield
    package_logger.handlers, package_logger.propagate, package_logger.level = saved[0], saved[1], saved[2]


@contextlib.contextmanager
def lambda_environment_for(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, *, service: str, config: str
) -> Iterator[None]:
    """Set what the SAM template sets, then hold mock AWS open with the config in its SSM parameter."""
    monkeypatch.delenv("TIDEGAUGE_REDIS_SECRET", raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tidegauge")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("TIDEGAUGE_CONFIG_PARAMETER", PARAMETER)
    monkeypatch.setenv("TIDEGAUGE_REDIS_URL", redis_url)
    with mock_aws_for(monkeypatch, REGION):
        boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value=config, Type="String")
        yield


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[Store]:
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    yield store
    store.close()
