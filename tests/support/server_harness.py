"""Run the real server (TLS, real Redis) in a background thread, and talk to it like the aggregator does."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from tests.support.pki import CertificateAuthority, Issued
from tidegauge.async_store import AsyncStore
from tidegauge.config import Config, parse_config
from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.runner import Server
from tidegauge.server.settings import AuthenticationFlags, AuthorizationMode, ServerSettings
from tidegauge.store import Store

T = TypeVar("T")

TEST_CONFIG = """
version: 1
redis:
  url: redis://127.0.0.1:1/0
sources:
  - name: orders
    type: sqs
    region: eu-west-1
    queues:
      names: [orders]
  - name: db
    type: cloudwatch
    region: eu-west-1
    queries:
      - metric: db_load
        namespace: AWS/RDS
        metric_name: DBLoad
        stat: Average
        dimensions: {DBInstanceIdentifier: main}
        max_age_seconds: 300
metrics:
  sqs_messages:
    max_age_seconds: 120
  db_load:
    max_age_seconds: 300
    fallback: {value: 0.5, after_seconds: 60}
exposure:
  - namespaces: [shop, default]
    metrics: ["*"]
  - namespaces: [team-*]
    metrics: [sqs_messages]
    selector: queue=payments
"""

HPA_ACCEPT = "application/vnd.kubernetes.protobuf, */*"
AGGREGATED_V2_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;q=0.9"
)


def server_config(redis_url: str) -> Config:
    return parse_config(TEST_CONFIG, "<test>", redis_url=redis_url, environ={})


@dataclasses.dataclass
class Pki:
    """The CAs of a test cluster and the certificates its parties hold, written under ``directory``."""

    directory: Path
    server_ca: CertificateAuthority = dataclasses.field(
        default_factory=lambda: CertificateAuthority("server-ca")
    )
    client_ca: CertificateAuthority = dataclasses.field(
        default_factory=lambda: CertificateAuthority("client-ca")
    )
    proxy_ca: CertificateAuthority = dataclasses.field(
        default_factory=lambda: CertificateAuthority("proxy-ca")
    )

    def __post_init__(self) -> None:
        self.serving = self.server_ca.issue_server()
        self.cert_file, self.key_file = self.serving.write(self.directory, "serving")
        self.client_ca_file = str(self.directory / "client-ca.crt")
        Path(self.client_ca_file).write_bytes(self.client_ca.pem)
        self.proxy_ca_file = str(self.directory / "proxy-ca.crt")
        Path(self.proxy_ca_file).write_bytes(self.proxy_ca.pem)
        self.aggregator = self.proxy_ca.issue("front-proxy-client")

    def context(self, client: Issued | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.server_ca.pem.decode())
        if client is not None:
            stem = f"client-{len(list(self.directory.iterdir()))}"
            context.load_cert_chain(*client.write(self.directory, stem))
        return context


def settings_for(pki: Pki, **overrides: Any) -> ServerSettings:
    flags = AuthenticationFlags(
        client_ca_file=pki.client_ca_file,
        requestheader_client_ca_file=pki.proxy_ca_file,
        requestheader_allowed_names=("front-proxy-client",),
        skip_lookup=True,
    )
    values: dict[str, Any] = {
        "bind_address": "127.0.0.1",
        "secure_port": 0,
        "metrics_bind_address": "127.0.0.1",
        "metrics_port": 0,
        "tls_cert_file": pki.cert_file,
        "tls_private_key_file": pki.key_file,
        "authentication": flags,
        "authorization_mode": AuthorizationMode.ALWAYS_ALLOW_AUTHENTICATED,
        "response_cache_seconds": 0.0,
        "tls_reload_interval_seconds": 0.1,
    }
    values.update(overrides)
    return ServerSettings(**values)


def webhook_settings(pki: Pki, kubeconfig: str) -> ServerSettings:
    """Settings that send TokenReviews and SubjectAccessReviews to the kube-apiserver of ``kubeconfig``."""
    flags = AuthenticationFlags(
        client_ca_file=pki.client_ca_file,
        requestheader_client_ca_file=pki.proxy_ca_file,
        authentication_kubeconfig=kubeconfig,
        skip_lookup=True,
    )
    return settings_for(
        pki,
        authentication=flags,
        authorization_mode=AuthorizationMode.WEBHOOK,
        authorization_kubeconfig=kubeconfig,
    )


class ServerThread:
    """A :class:`Server` on its own event loop in a daemon thread; use as a context manager."""

    def __init__(self, settings: ServerSettings, config: Config, **server_options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self.call(self._make(settings, config, server_options))

    async def _make(self, settings: ServerSettings, config: Config, options: dict[str, Any]) -> Server:
        server = Server(settings, config, **options)
        await server.start()
        return server

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def port(self) -> int:
        return self.server.secure_port

    def stop(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclasses.dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    path: str,
    context: ssl.SSLContext | None,
    headers: Mapping[str, str] | list[tuple[str, str]] = (),  # type: ignore[assignment]
    method: str = "GET",
    timeout: float = 10,
) -> Reply:
    """One request on a fresh connection (HTTPS when ``context`` is given), headers sent as given."""
    if context is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=timeout
        )
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def seed(redis_url: str, samples: Sequence[Sample], *, flush: bool = False) -> str:
    """Write ``samples`` into the Redis at ``redis_url`` (emptied first with ``flush``); returns the URL."""
    store = Store.connect(ConnectionSettings(redis_url))
    try:
        if flush:
            cast(Any, store.client).flushall()
        store.write(samples)
    finally:
        store.close()
    return redis_url


def orders_sample(value: float = 5) -> Sample:
    """The one fresh series most server tests read: ``sqs_messages{queue="orders"}``."""
    return Sample.of("sqs_messages", {"queue": "orders"}, value, time.time())


class PassThroughStore:
    """An AsyncStore wrapper that tests subclass to slow down or hold metric reads."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        return await self.store.read_latest(metric, selector)

    async def metric_names(self) -> set[str]:
        return await self.store.metric_names()

    async def ping(self) -> bool:
        return await self.store.ping()

    async def close(self) -> None:
        await self.store.close()


def served_certificate_digest(port: int, context: ssl.SSLContext) -> str:
    """SHA-256 of the certificate a new TLS connection to ``port`` is served (hostname ``localhost``)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return hashlib.sha256(certificate).hexdigest()


def stop_process(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` if it still runs, reap it and close its stderr pipe."""
    if process.poll() is None:
        process.kill()
    process.wait(10)
    if process.stderr:
        process.stderr.close()


def aggregator_headers(
    user: str = "system:kube-aggregator", groups: tuple[str, ...] = ("system:masters",)
) -> list[tuple[str, str]]:
    return [("X-Remote-User", user), *(("X-Remote-Group", group) for group in groups)]
