"""KEDA's ``externalscaler.ExternalScaler`` over ``grpc.aio``, answered by the external metrics provider.

Each call parses the trigger metadata KEDA sends, asks the provider (same store, staleness, fallback and
exposure as the API server) and answers. A metric with nothing fresh is a gRPC error (``NOT_FOUND``,
``UNAVAILABLE`` when the store is down), never a stale value: KEDA then applies the ScaledObject's
``fallback``. ``StreamIsActive`` re-reads every ``stream_interval_seconds`` and pushes each change of
activity, so a queue going from empty to non-empty reaches KEDA within about a second, not at its next poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc import aio

from tidegauge.keda import messages
from tidegauge.keda.trigger import Trigger, TriggerError, parse_trigger
from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.selectors import Selector
from tidegauge.server.provider import MetricNotFound
from tidegauge.server.telemetry import LATENCY_BUCKETS, Counter, Histogram, Telemetry
from tidegauge.server.types import ExternalMetricValue
from tidegauge.store import StoreError, StoreUnavailable

logger = logging.getLogger(__name__)
_rate_limited = RateLimitedLog(logger, 10.0)

MAX_CONCURRENT_CALLS = 4096
"""Calls in progress at most (an open StreamIsActive counts as one); beyond: RESOURCE_EXHAUSTED."""
STOP_GRACE_SECONDS = 1.0
"""On shutdown, unary calls get this long to finish; open streams are then cancelled (KEDA reconnects)."""


class MetricSource(Protocol):
    """The provider's one method the scaler needs (``ExternalMetricsProvider``)."""

    async def get_external_metric(
        self, namespace: str, selector: Selector, name: str
    ) -> list[ExternalMetricValue]: ...


@dataclass(frozen=True, slots=True)
class ScalerTls:
    """The gRPC port's TLS: ``pair()`` is the serving (certificate, key) PEM pair of the moment (the API
    server's, reloaded when its files change), ``client_ca`` the CA client certificates must chain to
    (KEDA's ``tlsClientCert``); None accepts any client (KEDA's ``caCert`` only)."""

    pair: Callable[[], tuple[bytes, bytes]]
    client_ca: bytes | None = None

    def configuration(self, pair: tuple[bytes, bytes]) -> Any:
        """grpc's certificate configuration of ``pair`` with the client CA."""
        certificate, key = pair
        return grpc.ssl_server_certificate_configuration(
            [(key, certificate)], root_certificates=self.client_ca
        )


class _Rotation:
    """gRPC asks before each new connection's handshake; a changed serving pair is handed over then."""

    def __init__(self, tls: ScalerTls) -> None:
        self._tls = tls
        self.served = tls.pair()

    def fetch(self) -> Any:
        pair = self._tls.pair()
        if pair == self.served:
            return None
        self.served = pair
        logger.info("the KEDA scaler port serves the reloaded certificate to new connections")
        return self._tls.configuration(pair)


class ScalerError(Exception):
    """An answer that is a gRPC error status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _status_for(error: Exception) -> ScalerError:
    if isinstance(error, ScalerError):
        return error
    if isinstance(error, TriggerError):
        return ScalerError(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    if isinstance(error, MetricNotFound):
        return ScalerError(grpc.StatusCode.NOT_FOUND, str(error))
    if isinstance(error, StoreUnavailable | TimeoutError):
        return ScalerError(grpc.StatusCode.UNAVAILABLE, "the metrics store is unavailable")
    if isinstance(error, StoreError):
        logger.error("metrics store error: %s", error)
        return ScalerError(grpc.StatusCode.INTERNAL, "metrics store error; see the server's log")
    logger.exception("unexpected error while answering KEDA", exc_info=error)
    return ScalerError(grpc.StatusCode.INTERNAL, "an internal error occurred; see the server's log")


class ExternalScaler:
    """The four methods, on raw request bytes (see :mod:`.messages`), with telemetry."""

    def __init__(
        self,
        source: MetricSource,
        telemetry: Telemetry,
        *,
        call_timeout_seconds: float = 2.0,
        stream_interval_seconds: float = 0.5,
    ) -> None:
        self._source = source
        self._timeout = call_timeout_seconds
        self._interval = stream_interval_seconds
        self._calls = Counter(
            "tidegauge_keda_scaler_calls_total",
            "KEDA external scaler calls answered, by method and gRPC code.",
            ("method", "code"),
            telemetry.registry,
        )
        self._latency = Histogram(
            "tidegauge_keda_scaler_call_duration_seconds",
            "Time to answer a KEDA external scaler call (a StreamIsActive read), by method.",
            ("method",),
            LATENCY_BUCKETS,
            telemetry.registry,
        )

    async def value(self, trigger: Trigger) -> float:
        """The sum of the trigger's fresh series (what an HPA External metric sums), bounded in time."""
        async with asyncio.timeout(self._timeout):
            values = await self._source.get_external_metric(
                trigger.namespace, trigger.selector, trigger.metric
            )
        return sum(item.value for item in values)

    async def _unary(self, method: str, answer: Callable[[], Awaitable[bytes]], context: Any) -> bytes:
        started = time.perf_counter()
        try:
            reply = await answer()
        except Exception as error:
            status = _status_for(error)
            self._record(method, status.code, started)
            await context.abort(status.code, status.message)
            raise  # abort() raises; this line is never reached
        self._record(method, grpc.StatusCode.OK, started)
        return reply

    def _record(self, method: str, code: grpc.StatusCode, started: float) -> None:
        self._calls.inc(method, code.name)
        self._latency.observe(time.perf_counter() - started, method)

    async def is_active(self, request: bytes, context: Any) -> bytes:
        async def answer() -> bytes:
            trigger = _trigger(messages.decode_ref(request))
            return messages.encode_is_active(await self.value(trigger) > trigger.activation)

        return await self._unary("IsActive", answer, context)

    async def get_metric_spec(self, request: bytes, context: Any) -> bytes:
        async def answer() -> bytes:
            trigger = _trigger(messages.decode_ref(request))
            return messages.encode_metric_spec(trigger.metric, trigger.target)

        return await self._unary("GetMetricSpec", answer, context)

    async def get_metrics(self, request: bytes, context: Any) -> bytes:
        async def answer() -> bytes:
            ref, metric_name = messages.decode_metrics_request(request)
            trigger = _trigger(ref)
            return messages.encode_metric_value(metric_name or trigger.metric, await self.value(trigger))

        return await self._unary("GetMetrics", answer, context)

    async def stream_is_active(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        """The activity now, then each change of it; an error (stale, store down) ends the stream with it."""
        last: bool | None = None
        try:
            trigger = _trigger(messages.decode_ref(request))
            while True:
                started = time.perf_counter()
                active = await self.value(trigger) > trigger.activation
                self._latency.observe(time.perf_counter() - started, "StreamIsActive")
                if active != last:
                    yield messages.encode_is_active(active)
                    last = active
                await asyncio.sleep(self._interval)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            status = _status_for(error)
            self._calls.inc("StreamIsActive", status.code.name)
            _rate_limited.info("ending a StreamIsActive stream: %s", status.message)
            await context.abort(status.code, status.message)

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's handlers; bytes in and out (no generated servicer needed)."""
        handlers = {
            "IsActive": grpc.unary_unary_rpc_method_handler(self.is_active),
            "StreamIsActive": grpc.unary_stream_rpc_method_handler(self.stream_is_active),
            "GetMetricSpec": grpc.unary_unary_rpc_method_handler(self.get_metric_spec),
            "GetMetrics": grpc.unary_unary_rpc_method_handler(self.get_metrics),
        }
        handler: grpc.GenericRpcHandler = grpc.method_handlers_generic_handler(messages.SERVICE, handlers)
        return handler


def _trigger(ref: messages.ScaledObjectRef) -> Trigger:
    return parse_trigger(ref.namespace, ref.metadata)


class ScalerServer:
    """The gRPC server on its own port; :meth:`start` binds it, :meth:`stop` drains it."""

    def __init__(self, scaler: ExternalScaler, tls: ScalerTls) -> None:
        self._scaler = scaler
        self._tls = tls
        self._server: aio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        server = aio.server(options=[("grpc.so_reuseport", 0)], maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS)
        server.add_generic_rpc_handlers((self._scaler.handler(),))
        rotation = _Rotation(self._tls)
        credentials = grpc.dynamic_ssl_server_credentials(
            self._tls.configuration(rotation.served),
            rotation.fetch,
            require_client_authentication=self._tls.client_ca is not None,
        )
        self.port = server.add_secure_port(f"{host}:{port}", credentials)
        await server.start()
        self._server = server
        logger.info("serving KEDA's external scaler on %s:%s (gRPC, TLS)", host, self.port)
        return self.port

    async def stop(self) -> None:
        """Refuse new calls, give unary ones :data:`STOP_GRACE_SECONDS`, then cancel open streams."""
        if self._server is not None:
            await self._server.stop(STOP_GRACE_SECONDS)
            self._server = None
