"""Collector credentials: assumed roles refreshed before expiry, call attribution, the Redis secret."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import botocore.credentials
import pytest

from tidegauge.config import RedisSettings
from tidegauge.redis_settings import SecretFormatError, connection_settings
from tidegauge.sources.aws import ApiCallCounter, assume_role_refresher

ROLE = "arn:aws:iam::210987654321:role/tidegauge-reader"


class FakeSts:
    """Answers AssumeRole with credentials valid for ``valid_for``."""

    def __init__(self, valid_for: datetime.timedelta) -> None:
        self.valid_for = valid_for
        self.requests: list[dict[str, Any]] = []

    def assume_role(self, **request: Any) -> Any:
        self.requests.append(request)
        number = len(self.requests)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{number}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": datetime.datetime.now(datetime.UTC) + self.valid_for,
            }
        }


def credentials(sts: FakeSts) -> botocore.credentials.Credentials:
    return botocore.credentials.DeferredRefreshableCredentials(
        refresh_using=assume_role_refresher(sts, ROLE), method="assume-role"
    )


def test_assumed_role_credentials_are_reused_while_valid() -> None:
    # GIVEN a role whose credentials are valid for an hour
    sts = FakeSts(datetime.timedelta(hours=1))
    refreshable = credentials(sts)

    # WHEN they are used three times
    keys = {refreshable.get_frozen_credentials().access_key for _ in range(3)}

    # THEN the role was assumed once, with the collector's session name
    assert keys == {"ASIA1"}
    assert sts.requests == [
        {"RoleArn": ROLE, "RoleSessionName": "tidegauge-collector", "DurationSeconds": 3600}
    ]


def test_assumed_role_credentials_are_refreshed_shortly_before_expiry() -> None:
    # GIVEN credentials that expire in five minutes (inside botocore's refresh window)
    sts = FakeSts(datetime.timedelta(minutes=5))
    refreshable = credentials(sts)

    # WHEN they are used twice
    first = refreshable.get_frozen_credentials().access_key
    second = refreshable.get_frozen_credentials().access_key

    # THEN fresh ones were fetched before use rather than sent about to expire
    assert (first, second) == ("ASIA1", "ASIA2")


def test_calls_are_attributed_to_the_sources_they_were_made_for() -> None:
    # GIVEN a counter and calls made on two worker threads for different sources, and one for none
    counter = ApiCallCounter()

    def call_for(*sources: str) -> None:
        with ApiCallCounter.attribute(*sources):
            counter.record("GetMetricData")

    threads = [threading.Thread(target=call_for, args=names) for names in (("a",), ("a", "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.record("GetParameter")

    # WHEN the counts are read
    counts = counter.snapshot()

    # THEN totals count each call once, and each source the calls made for it
    assert counts.totals == {"GetMetricData": 2, "GetParameter": 1}
    assert counts.by_source == {"a": {"GetMetricData": 2}, "b": {"GetMetricData": 1}}


REDIS = RedisSettings(url="rediss://tidegauge@cache.example:6379")


@pytest.mark.parametrize(
    ("secret", "username", "password"),
    [
        ("s3cret", None, "s3cret"),
        ('{"password": "s3cret"}', None, "s3cret"),
        ('{"username": "app", "password": "s3cret"}', "app", "s3cret"),
        ("{not json", None, "{not json"),
    ],
)
def test_redis_secret_is_a_bare_password_or_json(secret: str, username: str | None, password: str) -> None:
    # GIVEN a secret string in one of the accepted shapes
    # WHEN connection settings are built from it
    settings = connection_settings(REDIS, secret=secret, environ={})

    # THEN the password (and username) are taken from it; a non-JSON string is the password itself
    assert (settings.username, settings.password) == (username, password)


def test_redis_secret_json_without_password_is_rejected() -> None:
    # GIVEN a JSON secret without a password field
    # WHEN connection settings are built
    # THEN the error names the missing field
    with pytest.raises(SecretFormatError, match="'password'"):
        connection_settings(REDIS, secret='{"user": "app"}', environ={})
