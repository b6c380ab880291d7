"""KEDA's external scaler over gRPC + TLS, against the real server and real Redis, called as KEDA calls it.

KEDA's sequence for an ``external`` trigger: GetMetricSpec when it builds the HPA, then on every poll
IsActive and, for the HPA, GetMetrics; an ``external-push`` trigger also holds StreamIsActive open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc import aio

from tests.support.pki import CertificateAuthority, Issued
from tests.support.server_harness import Pki, ServerThread, seed, server_config, settings_for
from tidegauge.keda import messages
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.server.settings import KedaScalerSettings

METHOD = f"/{messages.SERVICE}"
TRIGGER = {
    "scalerAddress": "tidegauge.tidegauge.svc:9443",
    "metric": "sqs_messages",
    "labelSelector": "queue=orders",
    "targetAverageValue": "5",
    "activationValue": "0",
}


def queue_sample(value: float, *, age_seconds: float = 0.0) -> Sample:
    return Sample.of("sqs_messages", {"queue": "orders"}, value, time.time() - age_seconds)


class Keda:
    """A KEDA-like client of the scaler: raw bytes through :mod:`tidegauge.keda.messages`."""

    def __init__(self, channel: aio.Channel) -> None:
        self.channel = channel

    async def _unary(self, method: str, request: bytes) -> bytes:
        call = self.channel.unary_unary(f"{METHOD}/{method}")
        reply: bytes = await call(request, timeout=10)
        return reply

    async def get_metric_spec(self, metadata: dict[str, str]) -> list[tuple[str, int, float]]:
        return messages.decode_metric_specs(
            await self._unary("GetMetricSpec", messages.encode_ref("orders", "shop", metadata))
        )

    async def is_active(self, metadata: dict[str, str]) -> bool:
        return messages.decode_is_active(
            await self._unary("IsActive", messages.encode_ref("orders", "shop", metadata))
        )

    async def get_metrics(self, metadata: dict[str, str], name: str) -> list[tuple[str, int, float]]:
        request = messages.encode_metrics_request("orders", "shop", metadata, name)
        return messages.decode_metric_values(await self._unary("GetMetrics", request))

    def stream_is_active(self, metadata: dict[str, str]) -> AsyncIterator[bytes]:
        call = self.channel.unary_stream(f"{METHOD}/StreamIsActive")
        stream: AsyncIterator[bytes] = call(messages.encode_ref("orders", "shop", metadata), timeout=30)
        return stream


@pytest.fixture
def scaler_client_ca(pki: Pki) -> str:
    """Client certificates KEDA presents (tlsClientCert) are issued by the test's client CA."""
    return pki.client_ca_file


def _server(pki: Pki, redis_url: str, client_ca_file: str | None) -> ServerThread:
    keda = KedaScalerSettings(port=0, client_ca_file=client_ca_file, stream_interval_seconds=0.05)
    return ServerThread(settings_for(pki, keda_scaler=keda), server_config(redis_url))


@pytest.fixture
def server(pki: Pki, redis_server: RedisServer) -> Iterator[ServerThread]:
    url = seed(redis_server.url, [queue_sample(0)], flush=True)
    with _server(pki, url, None) as thread:
        yield thread


@asynccontextmanager
async def keda_client(
    pki: Pki, port: int, client: Issued | None = None, *, trusted: bytes | None = None
) -> AsyncIterator[Keda]:
    """A channel trusting the server CA (or ``trusted``), presenting ``client`` if given."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trusted or pki.server_ca.pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.certificate_pem if client else None,
    )
    async with aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        yield Keda(channel)


def test_keda_call_sequence_reads_the_store(
    server: ServerThread, pki: Pki, redis_server: RedisServer
) -> None:
    async def scenario() -> None:
        async with keda_client(pki, server.server.keda_port) as keda:
            # GIVEN an empty queue: KEDA builds its HPA from GetMetricSpec, then polls
            assert await keda.get_metric_spec(TRIGGER) == [("sqs_messages", 5, 5.0)]
            assert await keda.is_active(TRIGGER) is False
            assert await keda.get_metrics(TRIGGER, "s0-sqs_messages") == [("s0-sqs_messages", 0, 0.0)]
            # WHEN the collector writes 12.5 messages' worth THEN the next poll is active with that value
            seed(redis_server.url, [queue_sample(12.5)])
            assert await keda.is_active(TRIGGER) is True
            assert await keda.get_metrics(TRIGGER, "s0-sqs_messages") == [("s0-sqs_messages", 12, 12.5)]
            # AND an activation value above it keeps the trigger inactive
            assert await keda.is_active({**TRIGGER, "activationValue": "20"}) is False

    asyncio.run(scenario())
    assert (
        server.server.telemetry.registry.get_sample_value(
            "tidegauge_keda_scaler_calls_total", {"method": "GetMetrics", "code": "OK"}
        )
        == 2
    )


def test_stream_pushes_activation_within_two_seconds_of_the_queue_filling(
    server: ServerThread, pki: Pki, redis_server: RedisServer
) -> None:
    async def scenario() -> None:
        async with keda_client(pki, server.server.keda_port) as keda:
            stream = aiter(keda.stream_is_active(TRIGGER))
            # GIVEN the stream's first message: inactive (the queue is empty)
            assert messages.decode_is_active(await asyncio.wait_for(anext(stream), 10)) is False
            # WHEN a message arrives in the queue THEN the stream pushes "active" within 2 s
            seed(redis_server.url, [queue_sample(1)])
            pushed = await asyncio.wait_for(anext(stream), 2.0)
            assert messages.decode_is_active(pushed) is True

    asyncio.run(scenario())


def test_stale_series_is_an_error_never_a_value(
    server: ServerThread, pki: Pki, redis_server: RedisServer
) -> None:
    # GIVEN the only series older than its max age (120 s)
    seed(redis_server.url, [queue_sample(40, age_seconds=600)], flush=True)

    async def scenario() -> None:
        async with keda_client(pki, server.server.keda_port) as keda:
            for call in (keda.get_metrics(TRIGGER, "s0-sqs_messages"), keda.is_active(TRIGGER)):
                with pytest.raises(aio.AioRpcError) as raised:
                    await call
                assert raised.value.code() is grpc.StatusCode.NOT_FOUND
                assert "stale" in (raised.value.details() or "")
            # AND an open stream ends with the same error instead of a value
            with pytest.raises(aio.AioRpcError) as ended:
                await anext(aiter(keda.stream_is_active(TRIGGER)))
            assert ended.value.code() is grpc.StatusCode.NOT_FOUND

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"metric": "sqs_messages"}, "targetValue"),
        ({**TRIGGER, "targetValue": "3"}, "targetValue"),
        ({**TRIGGER, "labelSelector": "queue in orders"}, "labelSelector"),
        ({**TRIGGER, "targetAverageValue": "-1"}, "targetAverageValue"),
        ({**TRIGGER, "metric": ""}, "metric"),
    ],
)
def test_bad_trigger_metadata_is_invalid_argument_naming_the_field(
    server: ServerThread, pki: Pki, metadata: dict[str, str], field: str
) -> None:
    async def scenario() -> None:
        async with keda_client(pki, server.server.keda_port) as keda:
            with pytest.raises(aio.AioRpcError) as raised:
                await keda.get_metric_spec(metadata)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert field in (raised.value.details() or "")

    asyncio.run(scenario())


def test_client_certificate_is_required_when_a_client_ca_is_configured(
    pki: Pki, redis_server: RedisServer, scaler_client_ca: str, tmp_path: Path
) -> None:
    url = seed(redis_server.url, [queue_sample(3)], flush=True)
    keda_certificate = pki.client_ca.issue("keda-operator")
    stranger = pki.proxy_ca.issue("keda-operator")

    async def scenario(port: int) -> None:
        # GIVEN KEDA's tlsClientCert from the configured CA THEN the call is answered
        async with keda_client(pki, port, keda_certificate) as keda:
            assert await keda.is_active(TRIGGER) is True
        # WHEN a client presents no certificate, or one of another CA THEN the handshake fails
        for client in (None, stranger):
            async with keda_client(pki, port, client) as keda:
                with pytest.raises(aio.AioRpcError) as raised:
                    await keda.is_active(TRIGGER)
                assert raised.value.code() is grpc.StatusCode.UNAVAILABLE

    with _server(pki, url, scaler_client_ca) as thread:
        asyncio.run(scenario(thread.server.keda_port))


def test_without_a_client_ca_tls_only_is_enough(server: ServerThread, pki: Pki) -> None:
    # GIVEN KEDA with caCert only (no client certificate) WHEN it calls THEN it is answered over TLS
    async def scenario() -> None:
        async with keda_client(pki, server.server.keda_port) as keda:
            assert await keda.is_active(TRIGGER) is False
        # AND a plaintext client is refused
        async with aio.insecure_channel(f"127.0.0.1:{server.server.keda_port}") as channel:
            with pytest.raises(aio.AioRpcError) as raised:
                await Keda(channel).is_active(TRIGGER)
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_renewed_serving_certificate_is_served_to_new_connections(server: ServerThread, pki: Pki) -> None:
    # GIVEN the serving certificate renewed by another CA (cert-manager rotating it) and reloaded
    renewed_ca = CertificateAuthority("renewed-ca")
    renewed_ca.issue_server().write(Path(pki.cert_file).parent, "serving")
    assert server.server.tls.reload_if_changed()

    async def scenario() -> None:
        # WHEN KEDA connects anew trusting the new CA THEN the scaler port answers with the new certificate
        async with keda_client(pki, server.server.keda_port, trusted=renewed_ca.pem) as keda:
            assert await keda.is_active(TRIGGER) is False
        # AND a client still trusting only the old CA no longer completes a handshake
        async with keda_client(pki, server.server.keda_port) as keda:
            with pytest.raises(aio.AioRpcError) as raised:
                await keda.is_active(TRIGGER)
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_shutdown_ends_open_streams_instead_of_waiting_for_them(pki: Pki, redis_server: RedisServer) -> None:
    url = seed(redis_server.url, [queue_sample(0)], flush=True)
    keda = KedaScalerSettings(port=0, stream_interval_seconds=0.05)
    # GIVEN a drain time far longer than the stream's own deadline
    settings = settings_for(pki, keda_scaler=keda, shutdown_timeout_seconds=120)
    thread = ServerThread(settings, server_config(url))

    async def scenario() -> None:
        async with keda_client(pki, thread.server.keda_port) as client:
            stream = aiter(client.stream_is_active(TRIGGER))
            assert messages.decode_is_active(await anext(stream)) is False
            # WHEN the server stops with KEDA's stream (deadline 30 s) open THEN it stops well before
            await asyncio.wait_for(asyncio.to_thread(thread.stop), 10)
            # AND the stream ends, so KEDA reconnects to another replica
            with pytest.raises(aio.AioRpcError):
                await asyncio.wait_for(anext(stream), 10)

    asyncio.run(scenario())
