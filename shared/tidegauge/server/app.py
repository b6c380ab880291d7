"""Routes of the secure port, and the ONE place where errors become ``Status`` answers.

Order for every request: health paths answer at once (no authentication); otherwise authenticate
(anonymous -> 401), refuse methods other than GET/HEAD (405), authorize (403), then route. Unknown
paths are 404 after authorization, as upstream. No redirects, trailing slashes answered, unknown query
parameters ignored. Every non-2xx answer is a ``Status`` JSON (see :mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from tidegauge.names import NAMESPACE
from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.selectors import Selector, SelectorError
from tidegauge.server import errors
from tidegauge.server.authn import Authenticator, UserInfo
from tidegauge.server.authz import AuthorizationUnavailable, Authorizer
from tidegauge.server.cache import TtlCache
from tidegauge.server.custom import CustomMetricsProvider
from tidegauge.server.custom_answer import answer_custom_metric
from tidegauge.server.delegate import Delegate, HeldNames
from tidegauge.server.discovery import Discovery
from tidegauge.server.health import Readiness
from tidegauge.server.openapi import OpenApi
from tidegauge.server.pods import PodCache
from tidegauge.server.provider import MetricNotFound
from tidegauge.server.routing import Route, RouteKind, resolve, selector_from_query
from tidegauge.server.settings import DEFAULT_RESPONSE_CACHE_BYTES
from tidegauge.server.telemetry import Telemetry
from tidegauge.server.types import ExternalMetrics, encode_external_list
from tidegauge.store import StoreError, StoreUnavailable

logger = logging.getLogger(__name__)
_rate_limited = RateLimitedLog(logger, 10.0)

JSON = "application/json"
_READ_METHODS = frozenset(("GET", "HEAD"))


@dataclass(frozen=True, slots=True)
class Services:
    """What the routes need, built once by :mod:`.runner`."""

    provider: ExternalMetrics
    authenticator: Authenticator
    authorizer: Authorizer
    readiness: Readiness
    telemetry: Telemetry
    discovery: Discovery
    openapi: OpenApi
    response_cache_seconds: float = 1.0
    response_cache_bytes: int = DEFAULT_RESPONSE_CACHE_BYTES
    max_query_length: int = 8192
    request_timeout_seconds: float = 2.0
    """One deadline for the whole request: authentication, authorization and the store together."""
    delegate: Delegate | None = None
    """Where external metrics not in ``held`` are forwarded (see :mod:`.delegate`); None: answered here."""
    held: HeldNames | None = None
    custom: CustomMetricsProvider | None = None
    """Custom metrics (``objects:`` rules); None: the custom metrics paths are not found."""
    pods: PodCache | None = None
    """The watched pods, for Pods metrics; None when no rule describes pods or no kube-apiserver."""


_ANSWER_OVERHEAD_BYTES = 256
"""What one cached answer costs beyond its body and key (dict slot, tuple, bytes header)."""


def _answer_weight(key: tuple[str, str, Selector], body: bytes) -> int:
    return len(body) + len(key[0]) + len(key[1]) + 2 * len(str(key[2])) + _ANSWER_OVERHEAD_BYTES


def status_for(error: Exception) -> errors.ApiError:
    """Map a domain error to its API answer; details of unexpected errors are logged, never sent."""
    if isinstance(error, errors.ApiError):
        return error
    if isinstance(error, SelectorError):
        return errors.bad_request(str(error))
    if isinstance(error, MetricNotFound):
        return errors.not_found(str(error))
    if isinstance(error, StoreUnavailable):
        # Logged once per outage and summarised per interval by RedisHealth, not per request.
        logger.debug("metrics store unavailable: %s", error)
        return errors.service_unavailable()
    if isinstance(error, AuthorizationUnavailable):
        logger.warning("authorization unavailable: %s", error)
        return errors.service_unavailable("unable to authorize the request: the authorizer is unavailable")
    if isinstance(error, StoreError):
        logger.error("metrics store error: %s", error)
        return errors.internal_error()
    logger.exception("unexpected error while answering a request", exc_info=error)
    return errors.internal_error()


class Handler:
    """The single catch-all handler of the secure port."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._bodies: TtlCache[tuple[str, str, Selector], bytes] = TtlCache(
            services.response_cache_seconds,
            100_000,
            max_bytes=services.response_cache_bytes,
            weigh=_answer_weight,
        )

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        route = resolve(request.rel_url.raw_path)
        deadline = asyncio.timeout(self.services.request_timeout_seconds)
        try:
            async with deadline:
                response = await self._answer(request, route)
        except Exception as error:
            if isinstance(error, TimeoutError) and deadline.expired():
                _rate_limited.warning("a request took longer than its deadline; answering 503")
                error = errors.request_timeout(self.services.request_timeout_seconds)
            api_error = status_for(error)
            if isinstance(error, StoreError):
                kind = "unavailable" if isinstance(error, StoreUnavailable) else "error"
                self.services.telemetry.redis_errors.inc(kind)
            response = web.Response(body=api_error.body(), status=api_error.code, content_type=JSON)
        code = str(response.status)
        telemetry = self.services.telemetry
        telemetry.requests.inc(code, route.kind.value)
        telemetry.latency.observe(time.perf_counter() - started, code, route.kind.value)
        return response

    async def _answer(self, request: web.BaseRequest, route: Route) -> web.StreamResponse:
        services = self.services
        if route.kind is RouteKind.HEALTH:
            return await self._health(request, route)
        user = await services.authenticator.authenticate(_peer_certificate(request), request.headers)
        if user.anonymous:
            raise errors.unauthorized()
        if request.method not in _READ_METHODS:
            raise errors.method_not_allowed(request.method)
        await self._authorize(user, route)
        if route.kind is RouteKind.EXTERNAL_METRIC:
            return await self._external_metric(request, route)
        if route.kind is RouteKind.CUSTOM_METRIC:
            query = self._checked_query(request, route)
            body = await answer_custom_metric(services.custom, services.pods, route, query)
            return web.Response(body=body, content_type=JSON)
        if route.kind is RouteKind.GROUP_LIST:
            body, content_type = services.discovery.group_list(request.headers.get("Accept"))
            return web.Response(body=body, headers={"Content-Type": content_type})
        document = services.discovery.documents.get(route.path) or services.openapi.documents.get(route.path)
        if document is None:
            raise errors.path_not_found(route.path)
        return web.Response(body=document, content_type=JSON)

    async def _authorize(self, user: UserInfo, route: Route) -> None:
        decision = await self.services.authorizer.authorize(user, route.attributes)
        self.services.telemetry.authorizations.inc("allowed" if decision.allowed else "denied")
        if not decision.allowed:
            raise errors.forbidden(route.attributes.denial(user, decision.reason))

    def _checked_query(self, request: web.BaseRequest, route: Route) -> str:
        """The raw query string, once the path's namespace and the query's length are known good (400)."""
        namespace = route.namespace
        if not NAMESPACE.accepts(namespace):
            raise errors.bad_request(f"invalid namespace {namespace[:100]!r}: it must be a DNS label")
        query = request.rel_url.raw_query_string
        if len(query) > self.services.max_query_length:
            raise errors.bad_request(
                f"the query string is {len(query)} characters long, "
                f"more than {self.services.max_query_length}"
            )
        return query

    async def _external_metric(self, request: web.BaseRequest, route: Route) -> web.Response:
        namespace, metric = route.namespace, route.metric
        query = self._checked_query(request, route)
        delegate, held = self.services.delegate, self.services.held
        if delegate is not None and held is not None and metric not in held:
            answer = await delegate.forward(request.rel_url.raw_path, query, request.headers.get("Accept"))
            content_type = {"Content-Type": answer.content_type}
            return web.Response(body=answer.body, status=answer.status, headers=content_type)
        selector = selector_from_query(query)
        key = (namespace, metric, selector)
        body = self._bodies.get(key)
        if body is None:
            values = await self.services.provider.get_external_metric(namespace, selector, metric)
            self.services.telemetry.served.record(values)
            body = encode_external_list(values)
            self._bodies.put(key, body)
        return web.Response(body=body, content_type=JSON)

    async def _health(self, request: web.BaseRequest, route: Route) -> web.Response:
        if request.method not in _READ_METHODS:
            raise errors.method_not_allowed(request.method)
        if route.path.startswith("/readyz"):
            problem = await self.services.readiness.problem()
            if problem is not None:
                raise errors.service_unavailable(f"not ready: {problem}")
        return web.Response(text="ok", content_type="text/plain")


def _peer_certificate(request: web.BaseRequest) -> bytes | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    certificate: bytes | None = ssl_object.getpeercert(binary_form=True)
    return certificate


def create_server(services: Services) -> web.Server:
    """aiohttp's low-level server: EVERY request (any method, any path bytes) reaches :class:`Handler`.

    No router (``/{tail:.*}`` misses paths with a newline, and ``CONNECT`` targets), and no
    ``Expect: 100-continue`` handling: a GET needs no interim answer, and none is sent before
    authentication.
    """
    return web.Server(Handler(services).__call__)
