"""boto3 clients for the collectors: per region and optional assumed role, adaptive retries, counted calls.

``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) is honoured by botocore itself, so a moto server
or LocalStack stands in for AWS without code changes; an explicit ``endpoint_url`` beats it.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3.session
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.config import Config

from tidegauge.sources.exceptions import CollectionError

if TYPE_CHECKING:
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef, AssumeRoleResponseTypeDef

DEFAULT_MAX_ATTEMPTS = 4
"""Total attempts per API call (the first plus three retries), adaptive mode."""
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
MAX_POOL_CONNECTIONS = 256
"""Kept idle connections per client: the largest ``sampling.max_workers`` the config allows."""
ROLE_SESSION_NAME = "tidegauge-collector"
ROLE_SESSION_SECONDS = 3600

_ATTRIBUTION: ContextVar[tuple[str, ...]] = ContextVar("tidegauge_api_call_attribution", default=())


class StsClient(Protocol):
    """The part of boto3's STS client the collectors use."""

    def assume_role(self, **kwargs: Any) -> AssumeRoleResponseTypeDef: ...


@dataclass(frozen=True, slots=True)
class CallCounts:
    """API calls by operation: in total, and per source that the calls were made for."""

    totals: Mapping[str, int]
    by_source: Mapping[str, Mapping[str, int]]

    def minus(self, earlier: CallCounts) -> CallCounts:
        """The calls made since ``earlier`` was taken."""
        return CallCounts(
            totals=_difference(self.totals, earlier.totals),
            by_source={
                source: difference
                for source, counts in self.by_source.items()
                if (difference := _difference(counts, earlier.by_source.get(source, {})))
            },
        )

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def _difference(later: Mapping[str, int], earlier: Mapping[str, int]) -> dict[str, int]:
    return {
        name: count - earlier.get(name, 0) for name, count in later.items() if count - earlier.get(name, 0)
    }


class ApiCallCounter:
    """Counts API calls of every client it is attached to (botocore ``before-call``; retries excluded).

    Calls made inside :meth:`attribute` are also counted for the named sources, so one counter serves
    clients shared by several sources (a GetMetricData call carrying two sources' queries counts for both).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter()
        self._by_source: dict[str, Counter[str]] = {}

    def attach(self, client: Any) -> None:
        """Count every call ``client`` makes from now on."""
        client.meta.events.register("before-call", self._on_call)

    @staticmethod
    @contextlib.contextmanager
    def attribute(*sources: str) -> Iterator[None]:
        """Count calls made in this block (this thread or task) for ``sources`` too."""
        token = _ATTRIBUTION.set(sources)
        try:
            yield
        finally:
            _ATTRIBUTION.reset(token)

    def record(self, operation: str) -> None:
        sources = _ATTRIBUTION.get()
        with self._lock:
            self._totals[operation] += 1
            for source in sources:
                self._by_source.setdefault(source, Counter())[operation] += 1

    def snapshot(self) -> CallCounts:
        with self._lock:
            return CallCounts(
                totals=dict(self._totals),
                by_source={source: dict(counts) for source, counts in self._by_source.items()},
            )

    def _on_call(self, model: Any, **_: Any) -> None:
        self.record(str(model.name))


def account_of_arn(arn: str) -> str | None:
    """The 12-digit account of an ARN (``arn:PARTITION:SERVICE:REGION:ACCOUNT:...``), or None."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        return None
    account = parts[4]
    return account if len(account) == 12 and account.isdigit() else None


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore exception (SQS's query-compatible code when present)."""
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        return str(details.get("QueryErrorCode") or details.get("Code") or "ClientError")
    return type(error).__name__


def error_message(error: Exception) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        return str(details.get("Message") or error)
    return str(error)


def client_config(*, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    """Adaptive retries (client-side rate limiting on throttling) with a bounded number of attempts."""
    return Config(
        retries={"mode": "adaptive", "total_max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


class _AssumedRoleProvider(botocore.credentials.CredentialProvider):
    """A credential provider that always answers with one assumed role's refreshable credentials."""

    METHOD = "tidegauge-assume-role"
    CANONICAL_NAME = "tidegauge-assume-role"

    def __init__(self, credentials: botocore.credentials.Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.Credentials:
        return self._credentials


def assume_role_refresher(sts: StsClient, role_arn: str) -> Callable[[], dict[str, str]]:
    """A ``refresh_using`` callable for botocore's refreshable credentials that calls STS AssumeRole.

    botocore refreshes 15 minutes before expiry (10 minutes at the latest), so one invocation never
    sees expired credentials and warm invocations reuse them.
    """

    def refresh() -> dict[str, str]:
        request: AssumeRoleRequestTypeDef = {
            "RoleArn": role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
            "DurationSeconds": ROLE_SESSION_SECONDS,
        }
        credentials = sts.assume_role(**request)["Credentials"]
        expiry = credentials["Expiration"]
        if isinstance(expiry, datetime.datetime) and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.UTC)
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime.datetime) else str(expiry),
        }

    return refresh


class ClientFactory:
    """Creates and caches clients per (service, region, role); every client is counted by ``counter``.

    Create clients from one thread (boto3 sessions are not thread-safe); the clients themselves are
    safe to share between worker threads.
    """

    def __init__(
        self,
        *,
        counter: ApiCallCounter | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        session_factory: Callable[[], boto3.session.Session] = boto3.session.Session,
    ) -> None:
        self.counter = counter or ApiCallCounter()
        self._endpoint_url = endpoint_url
        self._config = client_config(max_attempts=max_attempts)
        self._session_factory = session_factory
        self._base_session: boto3.session.Session | None = None
        self._role_sessions: dict[tuple[str | None, str], boto3.session.Session] = {}
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None, role_arn: str | None = None) -> Any:
        """A client for ``service`` in ``region`` (None: the session's default), as ``role_arn`` if given."""
        key = (service, region, role_arn)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session = self._session(region, role_arn)
                client = session.client(
                    service,  # type: ignore[call-overload]  # the stubs overload on literal service names
                    region_name=region,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                )
                self.counter.attach(client)
                self._clients[key] = client
            return client

    def _session(self, region: str | None, role_arn: str | None) -> boto3.session.Session:
        if self._base_session is None:
            self._base_session = self._session_factory()
        if role_arn is None:
            return self._base_session
        session = self._role_sessions.get((region, role_arn))
        if session is None:
            sts = self._clients.get(("sts", region, None))
            if sts is None:
                sts = self._base_session.client(
                    "sts", region_name=region, endpoint_url=self._endpoint_url, config=self._config
                )
                self.counter.attach(sts)
                self._clients[("sts", region, None)] = sts
            credentials = botocore.credentials.DeferredRefreshableCredentials(
                refresh_using=assume_role_refresher(cast(StsClient, sts), role_arn), method="assume-role"
            )
            core = botocore.session.Session()
            core.register_component(
                "credential_provider",
                botocore.credentials.CredentialResolver([_AssumedRoleProvider(credentials)]),
            )
            session = boto3.session.Session(botocore_session=core, region_name=region)
            self._role_sessions[(region, role_arn)] = session
        return session


def read_secret(factory: ClientFactory, secret_id: str) -> str:
    """The text of a Secrets Manager secret (e.g. the Redis AUTH token), for commands run outside Lambda."""
    try:
        response = factory.client("secretsmanager", None).get_secret_value(SecretId=secret_id)
    except Exception as error:  # any failure: the caller cannot authenticate with it
        raise CollectionError(f"cannot read the secret {secret_id}: {error}") from error
    return str(response["SecretString"])


def read_parameter(factory: ClientFactory, name: str) -> str:
    """The (decrypted) value of an SSM parameter, e.g. the collectors' configuration."""
    try:
        response = factory.client("ssm", None).get_parameter(Name=name, WithDecryption=True)
    except Exception as error:  # any failure: the value cannot be had now
        raise CollectionError(f"cannot read the SSM parameter {name}: {error}") from error
    return str(response["Parameter"]["Value"])
