"""Wire the server together and run it: build the parts, start them, and on SIGTERM drain and exit.

:meth:`Server.build` makes every part with its collaborators and observers; :meth:`Server.start` binds the
ports and starts the background tasks.

Shutdown: readiness fails at once; the server keeps serving for ``shutdown_delay_seconds`` while the
endpoint removal propagates; then the listening sockets close, in-flight requests get up to
``shutdown_timeout_seconds`` to finish, then background tasks, Redis and kube clients are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from tidegauge import __version__
from tidegauge.config import Config
from tidegauge.config.objects import PODS
from tidegauge.errors import UsageError
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.redis_settings import connection_settings
from tidegauge.server import heap, tasks
from tidegauge.server.app import Services, create_server
from tidegauge.server.authconfig import AuthenticationConfig, AuthenticationConfigLoader
from tidegauge.server.authn import Authenticator
from tidegauge.server.authz import AlwaysAllowAuthenticated, Authorizer, WebhookAuthorizer
from tidegauge.server.backend import RedisBackend, RedisUrlFile, ServerStore, connect_when_answering
from tidegauge.server.custom import CustomMetricsProvider
from tidegauge.server.delegate import Delegate, HeldNames
from tidegauge.server.discovery import CUSTOM_METRICS_VERSIONS, EXTERNAL_METRICS, Discovery, custom_metrics
from tidegauge.server.health import Readiness, RedisHealth
from tidegauge.server.histories import SeriesHistories
from tidegauge.server.kube import KubeClient, KubeConnection, from_kubeconfig, in_cluster
from tidegauge.server.listener import Listener, connection_cap
from tidegauge.server.openapi import OpenApi
from tidegauge.server.pods import PodCache
from tidegauge.server.provider import ExternalMetricsProvider
from tidegauge.server.settings import AuthorizationMode, ConnectionLimits, KedaScalerSettings, ServerSettings
from tidegauge.server.signals import SignalsProvider
from tidegauge.server.telemetry import CONTENT_TYPE, Telemetry
from tidegauge.server.tls import ServingTls
from tidegauge.store import StoreError

logger = logging.getLogger(__name__)

SERVED = (EXTERNAL_METRICS,)
"""The external metrics group version; :meth:`Server.build` adds the custom metrics versions."""
POD_LIST_TIMEOUT_SECONDS = 30.0
"""Bound of one page (500 pods) of the pod list, read in the background, never per request."""
REDIS_CHECK_SECONDS = 5.0
"""How often Redis is pinged between requests, for the ``tidegauge_redis_up`` gauge."""


class SettingsError(UsageError, ValueError):
    """Settings that cannot work together; the message names the flags and the fix."""


class KedaScaler(Protocol):
    """The part of :class:`tidegauge.keda.service.ScalerServer` the runner stops."""

    async def stop(self) -> None: ...


def _connection(kubeconfig: str | None) -> KubeConnection | None:
    return from_kubeconfig(kubeconfig) if kubeconfig else in_cluster()


class Server:
    """One server: :meth:`start` binds the ports, :meth:`stop` drains and releases everything."""

    def __init__(
        self,
        settings: ServerSettings,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        store: ServerStore | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.clock = clock
        self._given_store = store
        self.secure_port = 0
        self.metrics_port = 0
        self.stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._kube_clients: list[KubeClient] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[web.BaseRunner] = []
        self._listeners: list[Listener] = []
        self._secure: Listener | None = None
        self._built = False
        self._url_file = RedisUrlFile(settings.redis_url_file) if settings.redis_url_file else None
        self._keda: KedaScaler | None = None
        self.keda_port = 0

    def _store_connector(self, telemetry: Telemetry) -> Callable[[], Awaitable[ServerStore]]:
        given = self._given_store
        if given is not None:

            async def existing() -> ServerStore:
                return given

            return existing

        def settings_now() -> ConnectionSettings:
            # The server reads no secrets itself (no AWS SDK): the password is in the URL (from the URL
            # file when one is given, read anew for every connection) or $TIDEGAUGE_REDIS_PASSWORD.
            redis = self.config.redis
            if self._url_file is not None:
                redis = dataclasses.replace(redis, url=self._url_file.url)
            return connection_settings(redis)

        def invalid(metric: str, _label_string: str) -> None:
            telemetry.series_dropped.inc(metric, "invalid-record")

        return lambda: connect_when_answering(settings_now(), invalid)

    def _kube_client(self, kubeconfig: str | None) -> KubeClient | None:
        connection = _connection(kubeconfig)
        if connection is None:
            return None
        client = KubeClient(connection, timeout_seconds=self.settings.request_timeout_seconds * 0.75)
        self._kube_clients.append(client)
        return client

    def _pod_cache(self) -> PodCache | None:
        """The pod list+watch cache, when a rule describes pods and a kube-apiserver is known."""
        if not any(rule.resource is PODS for rule in self.config.objects):
            return None
        settings = self.settings
        kubeconfig = settings.authorization_kubeconfig or settings.authentication.authentication_kubeconfig
        connection = _connection(kubeconfig)
        if connection is None:
            logger.warning(
                "objects: rules describe pods, but no kube-apiserver is known: pods metrics are 404"
            )
            return None
        client = KubeClient(connection, timeout_seconds=POD_LIST_TIMEOUT_SECONDS)
        self._kube_clients.append(client)
        return PodCache(client)

    def _authorizer(self, telemetry: Telemetry) -> Authorizer:
        settings = self.settings
        if settings.authorization_mode is AuthorizationMode.ALWAYS_ALLOW_AUTHENTICATED:
            return AlwaysAllowAuthenticated()
        kube = self._kube_client(settings.authorization_kubeconfig)
        if kube is None:
            raise SettingsError(
                "--authorization-mode=Webhook needs --authorization-kubeconfig or an in-cluster "
                "service account; for local use pass --authorization-mode=AlwaysAllowAuthenticated"
            )
        return WebhookAuthorizer(
            kube,
            cache_ttl_seconds=settings.auth_cache_ttl_seconds,
            cache_size=settings.auth_cache_size,
            record=lambda outcome: telemetry.authorizations.inc(f"webhook-{outcome}"),
        )

    async def build(self) -> None:
        """Make every part, each given its collaborators and observers as it is made; nothing listens yet."""
        settings = self.settings
        authentication_kube = self._kube_client(settings.authentication.authentication_kubeconfig)
        self.auth_loader = AuthenticationConfigLoader(settings.authentication, authentication_kube)
        if authentication_kube is None and not settings.authentication.skip_lookup:
            logger.warning(
                "no --authentication-kubeconfig and not in a cluster: "
                "client CAs only from flags, bearer tokens not accepted"
            )
        auth_config = await self.auth_loader.load()
        self.redis_health = RedisHealth()
        telemetry = Telemetry(
            clock=self.clock,
            redis_up=lambda: self.redis_health.up,
            open_connections=lambda: self._secure.open_connections if self._secure is not None else 0,
        )
        self.telemetry = telemetry
        authorizer = self._authorizer(telemetry)
        self.store = RedisBackend(self._store_connector(telemetry), self.redis_health)
        provider = ExternalMetricsProvider(
            self.store,
            self.config,
            snapshot_seconds=settings.response_cache_seconds,
            read_timeout_seconds=settings.request_timeout_seconds,
            clock=self.clock,
            record_fallback=telemetry.fallbacks.inc,
            record_last_known_good=telemetry.last_known_good.inc,
            record_dropped=telemetry.series_dropped.inc,
            newest_timestamps=telemetry.newest_timestamps,
        )
        signals = SignalsProvider(
            provider,
            SeriesHistories(self.store),
            self.config,
            interval_seconds=self.config.sampling.interval_seconds,
            clock=self.clock,
        )
        self.tls = ServingTls(settings.tls_cert_file, settings.tls_private_key_file, auth_config.all_cas)
        self.authenticator = Authenticator(
            auth_config,
            authentication_kube,
            cache_ttl_seconds=settings.auth_cache_ttl_seconds,
            cache_size=settings.auth_cache_size,
            record=telemetry.authentications.inc,
        )
        self.readiness = Readiness()
        self.delegate: Delegate | None = None
        self.held: HeldNames | None = None
        if settings.delegate is not None:
            self.delegate = Delegate(settings.delegate, record=telemetry.record_delegated)
            self.held = HeldNames(
                (*self.config.metric_names(), *self.config.metrics), self.store.metric_names
            )
        custom = CustomMetricsProvider(signals, self.config.objects)
        self.pods = self._pod_cache()
        entries = [(resource.resource, metric) for resource, metric in custom.metrics()]
        self.served = (*SERVED, *(custom_metrics(version, entries) for version in CUSTOM_METRICS_VERSIONS))
        self.services = Services(
            provider=signals,
            authenticator=self.authenticator,
            authorizer=authorizer,
            readiness=self.readiness,
            telemetry=telemetry,
            discovery=Discovery(self.served),
            openapi=OpenApi(self.served, __version__),
            response_cache_seconds=settings.response_cache_seconds,
            response_cache_bytes=settings.response_cache_bytes,
            max_query_length=settings.max_query_length,
            request_timeout_seconds=settings.request_timeout_seconds,
            delegate=self.delegate,
            held=self.held,
            custom=custom,
            pods=self.pods,
        )
        self._built = True

    async def start(self) -> None:
        """Build the parts (unless :meth:`build` ran), bind the ports, start the background tasks."""
        if not self._built:
            await self.build()
        settings, telemetry = self.settings, self.telemetry
        if self.held is not None:
            await self.refresh_held()  # before the port opens: the store's names are held from the start
        limits = dataclasses.replace(
            settings.connections, max_connections=connection_cap(settings.connections.max_connections)
        )
        secure_runner = web.ServerRunner(
            create_server(self.services), shutdown_timeout=settings.shutdown_timeout_seconds
        )
        secure = await self._listen(
            secure_runner, limits, settings.bind_address, settings.secure_port, telemetry, self._tls_context
        )
        self._secure, self.secure_port = secure, secure.port
        if settings.keda_scaler is not None:
            await self._start_keda_scaler(settings.keda_scaler)
        if settings.metrics_port is not None:
            metrics_runner = web.AppRunner(
                _metrics_app(telemetry), access_log=None, shutdown_timeout=settings.shutdown_timeout_seconds
            )
            metrics_limits = dataclasses.replace(limits, max_connections=settings.metrics_max_connections)
            address, port = settings.metrics_bind_address, settings.metrics_port
            metrics = await self._listen(metrics_runner, metrics_limits, address, port, telemetry)
            self.metrics_port = metrics.port
        self._tasks += [
            tasks.start_periodic("tls-reload", settings.tls_reload_interval_seconds, self._reload_tls),
            tasks.start_periodic(
                "redis-health",
                REDIS_CHECK_SECONDS,
                lambda: self.store.check(settings.request_timeout_seconds),
            ),
            tasks.start_periodic(
                "authentication-config",
                settings.authentication_refresh_seconds,
                lambda: self._refresh_auth(self.auth_loader),
            ),
        ]
        if self.held is not None:
            assert settings.delegate is not None  # held names are kept only when delegating
            self._tasks.append(
                tasks.start_periodic("held-names", settings.delegate.held_refresh_seconds, self.refresh_held)
            )
        if self.pods is not None:
            self._tasks.append(asyncio.create_task(self.pods.run(), name="pod-watch"))
        if self._url_file is not None:
            self._tasks.append(
                tasks.start_periodic(
                    "redis-url-file", settings.tls_reload_interval_seconds, self._reload_redis_url
                )
            )
        logger.info(
            "serving %s on https://%s:%s",
            ", ".join(s.group_version for s in self.served),
            settings.bind_address,
            secure,
        )

    async def _start_keda_scaler(self, keda: KedaScalerSettings) -> None:
        """KEDA's external scaler on its own port, from the same provider (imported only when asked:
        the server runs without the ``tidegauge[keda]`` extra)."""
        try:
            from tidegauge.keda.service import ExternalScaler, ScalerServer, ScalerTls
        except ImportError as error:
            raise SettingsError(
                f"--keda-scaler-port needs the KEDA extra: pip install 'tidegauge[keda]' ({error})"
            ) from error
        settings = self.settings
        serving = self.tls
        tls = ScalerTls(
            lambda: serving.pair, Path(keda.client_ca_file).read_bytes() if keda.client_ca_file else None
        )
        scaler = ExternalScaler(
            self.services.provider,
            self.telemetry,
            call_timeout_seconds=settings.request_timeout_seconds,
            stream_interval_seconds=keda.stream_interval_seconds,
        )
        self._keda = ScalerServer(scaler, tls)
        self.keda_port = await self._keda.start(settings.bind_address, keda.port)

    async def _listen(
        self,
        runner: web.BaseRunner,
        limits: ConnectionLimits,
        host: str,
        port: int,
        telemetry: Telemetry,
        tls_context: Callable[[], ssl.SSLContext | None] = lambda: None,
    ) -> Listener:
        await runner.setup()
        self._runners.append(runner)
        assert runner.server is not None
        listener = Listener(
            runner.server, limits, tls_context=tls_context, record=telemetry.connections_closed.inc
        )
        self._listeners.append(listener)
        await listener.start(host, port)
        return listener

    def _tls_context(self) -> ssl.SSLContext:
        """The serving context of the moment: each new connection gets the newest one."""
        return self.tls.context

    async def refresh_held(self) -> None:
        """The names tidegauge answers itself, from the store (bounded; a failure keeps the last set)."""
        assert self.held is not None
        try:
            await asyncio.wait_for(self.held.refresh(), self.settings.request_timeout_seconds)
        except (StoreError, TimeoutError) as error:
            logger.debug("held metric names not refreshed, keeping the last set: %s", error)

    async def _reload_tls(self) -> None:
        self.tls.reload_if_changed()

    async def _reload_redis_url(self) -> None:
        """A changed URL file (a rotated password, a new endpoint): reconnect with it, no restart."""
        assert self._url_file is not None  # the task runs only with a URL file
        if self._url_file.refresh():
            logger.warning("the Redis URL in %s changed: reconnecting with it", self._url_file.path)
            await self.store.reset()

    async def _refresh_auth(self, loader: AuthenticationConfigLoader) -> None:
        try:
            config = await loader.load()
        except Exception as error:
            logger.warning("authentication config not refreshed, keeping the current one: %s", error)
            return
        self.apply_authentication_config(config)

    def apply_authentication_config(self, config: AuthenticationConfig) -> None:
        if config == self.authenticator.config:
            return
        self.tls.trust_client_cas(config.all_cas)
        self.authenticator.update(config)
        logger.info("authentication config updated (client CAs, request-header settings)")

    def signalled(self) -> None:
        """SIGTERM/SIGINT: the first starts the shutdown, a second one skips what is left of its delay."""
        if self.stopping.is_set():
            self._hurry.set()
        self.stopping.set()
        if self._built:
            self.readiness.draining = True  # at once, even while start() is still finishing

    async def shutdown_delay(self) -> None:
        """Fail readiness at once but keep serving ``shutdown_delay_seconds`` (or until a second signal).

        Endpoint removal takes a while to reach kube-proxy and the aggregator; requests routed here
        meanwhile are still answered, as kube-apiserver's ``--shutdown-delay-duration`` does.
        """
        self.readiness.draining = True
        delay = self.settings.shutdown_delay_seconds
        if delay <= 0:
            return
        logger.info("signal received: readiness failing, serving %g s more before draining", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), delay)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), release everything."""
        self.readiness.draining = True
        await tasks.cancel_all(self._tasks)
        if self._keda is not None:
            await self._keda.stop()
        for listener in self._listeners:
            listener.stop_accepting()
        for runner in self._runners:
            await runner.cleanup()
        for listener in self._listeners:
            listener.abort_all()
        self._runners.clear()
        self._listeners.clear()
        await self.store.close()
        if self.delegate is not None:
            await self.delegate.close()
        for client in self._kube_clients:
            await client.close()
        logger.info("stopped")


def _metrics_app(telemetry: Telemetry) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=telemetry.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def serve(settings: ServerSettings, config: Config) -> int:
    """Run until SIGTERM or SIGINT, then drain and return 0."""
    server = Server(settings, config)
    loop = asyncio.get_running_loop()
    # Before start(): a signal that arrives once the port answers but before start() returns must start
    # the shutdown, not kill the process with the default action.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.signalled)
    await server.start()
    heap.enable()  # full GC passes skip what is held long-term (see tidegauge.server.heap)
    await server.stopping.wait()
    await server.shutdown_delay()
    logger.info("signal received: draining")
    await server.stop()
    return 0
