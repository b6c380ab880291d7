"""The listening sockets: TLS per connection, and the connection bounds aiohttp does not have.

aiohttp bounds one header line and the header count, but not a header block's total size nor the
time a client takes to send it, and it never limits connections (issue 10). Here each accepted
connection is counted against ``max_connections`` before its TLS handshake, gets the serving context
current at that moment (a rotated certificate of another key type is served at once), and is cut
when its handshake and header block take longer than ``header_read_timeout_seconds`` or its header
block grows past ``max_header_bytes``. Parser errors are answered as ``Status`` objects, logged in
one rate-limited line, never with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
from asyncio import sslproto
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.server import errors
from tidegauge.server.settings import ConnectionLimits

logger = logging.getLogger(__name__)
_rate_limited = RateLimitedLog(logger, 10.0)

FD_HEADROOM = 64
"""File descriptors kept free beyond the connection cap (Redis, kube-apiserver, files, the listeners)."""
_CLOSE_GRACE_SECONDS = 1.0
"""How long a refused connection may take to receive its answer before it is aborted."""


def connection_cap(wanted: int) -> int:
    """``wanted``, or less if the open-files limit cannot hold it plus headroom (raised when it can)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as error:
            logger.warning("cannot raise the open-files limit from %d: %s", soft, error)
    if soft != resource.RLIM_INFINITY and soft < needed:
        capped = max(1, soft - FD_HEADROOM)
        logger.warning(
            "the open-files limit (%d) cannot hold --max-connections=%d; serving at most %d connections",
            soft,
            wanted,
            capped,
        )
        return capped
    return wanted


def _raw_answer(error: errors.ApiError) -> bytes:
    """A whole HTTP/1.1 answer for a connection the parser cannot continue with."""
    body = error.body()
    head = (
        f"HTTP/1.1 {error.code} {HTTPStatus(error.code).phrase}\r\n"
        f"Content-Type: {errors.STATUS_CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _SSLProtocol(sslproto.SSLProtocol):
    """asyncio's TLS protocol with a 16 KiB read buffer (one TLS record) instead of 256 KiB.

    asyncio allocates and zero-fills ``max_size`` bytes per connection: with 256 KiB, 1,000 idle TLS
    connections held 256 MB of RSS.
    """

    max_size = 16 * 1024


async def _start_tls(
    loop: asyncio.AbstractEventLoop,
    raw: asyncio.Transport,
    protocol: asyncio.Protocol,
    context: ssl.SSLContext,
    timeout: float,
) -> asyncio.Transport:
    """``loop.start_tls(raw, protocol, context, server_side=True)``, with :class:`_SSLProtocol`."""
    waiter = loop.create_future()
    ssl_protocol = _SSLProtocol(
        loop, protocol, context, waiter, server_side=True,
        ssl_handshake_timeout=timeout,  # type: ignore[arg-type]  # a float works; typeshed says int
        call_connection_made=False,
    )  # fmt: skip
    raw.pause_reading()
    raw.set_protocol(ssl_protocol)
    made = loop.call_soon(ssl_protocol.connection_made, raw)
    resumed = loop.call_soon(raw.resume_reading)
    try:
        await waiter
    except BaseException:
        raw.close()
        made.cancel()
        resumed.cancel()
        raise
    return ssl_protocol._app_transport


class BoundedRequestHandler(RequestHandler):
    """aiohttp's request handler with a header-bytes cap, a header-read deadline and Status errors."""

    def __init__(self, manager: web.Server, listener: Listener, *, loop: asyncio.AbstractEventLoop) -> None:
        limits = listener.limits
        super().__init__(
            manager,
            loop=loop,
            keepalive_timeout=limits.idle_timeout_seconds,
            max_line_size=limits.max_header_line_bytes,
            max_field_size=limits.max_header_line_bytes,
            max_headers=limits.max_headers,
            access_log=None,  # type: ignore[arg-type]
        )
        self._listener = listener
        self._header_bytes = 0
        self._reading_headers = True
        self._header_timer: asyncio.TimerHandle | None = None
        self._body: Any = None

    @property
    def idle(self) -> bool:
        """No request being answered or queued: closing it loses no answer."""
        return not self._request_in_progress and not self._messages

    def start_header_clock(self, deadline: float) -> None:
        """Cut the connection at ``deadline`` (loop time) unless a header block completes first."""
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self._loop.call_at(deadline, self._header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close:
            return
        body = self._body
        if body is not None:
            if not body.is_eof():
                super().data_received(data)
                return
            self._body = None
        if not self._reading_headers:
            self._reading_headers = True
            self._header_bytes = 0
            self.start_header_clock(self._loop.time() + self._listener.limits.header_read_timeout_seconds)
        if self._header_bytes == 0 and self._keepalive_handle is not None:
            # A request has begun: the header-read deadline rules now, not the idle timeout (as Go).
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self._header_bytes += len(data)
        if self._header_bytes > self._listener.limits.max_header_bytes:
            self._refuse_header_block()
            return
        requests = self._request_count
        super().data_received(data)
        if self._request_count != requests:
            self._reading_headers = False
            self._stop_header_clock()
            if requests == 0:
                self._listener.served_first_request(self)
            if self._messages and not self._messages[-1][1].is_eof():
                self._body = self._messages[-1][1]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_clock()
        self._listener.release(self)
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A ``Status`` answer; client errors are logged in one rate-limited line, without a traceback."""
        if status >= 500:
            _rate_limited.error(
                "error answering a request: %r", exc, key="handler-error", exc_info=exc or None
            )
            error = errors.internal_error()
        else:
            self._listener.record("malformed-request")
            detail = message or (str(exc) if exc is not None else HTTPStatus(status).phrase)
            _rate_limited.info("malformed request from a client: %r", detail[:200])
            error = errors.malformed_request(status, detail)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was being sent already; closing the connection")
        response = web.Response(status=error.code, body=error.body(), content_type=errors.STATUS_CONTENT_TYPE)
        response.force_close()
        return response

    def _stop_header_clock(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self._reading_headers or self.transport is None:
            return
        self._listener.record("header-timeout")
        _rate_limited.info("closing a connection that did not send its request headers in time")
        self.transport.abort()

    def _refuse_header_block(self) -> None:
        self._listener.record("header-too-large")
        _rate_limited.info("closing a connection whose request headers are too large")
        self._stop_header_clock()
        transport = self.transport
        if transport is None:
            return
        if not self._request_in_progress and not self._messages:
            transport.write(
                _raw_answer(errors.header_fields_too_large(self._listener.limits.max_header_bytes))
            )
        self.force_close()
        self._loop.call_later(_CLOSE_GRACE_SECONDS, transport.abort)


class _Accepted(asyncio.Protocol):
    """A connection between accept and the start of HTTP: the cap, then the TLS handshake."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.handler: BoundedRequestHandler | None = None
        self._raw: asyncio.Transport | None = None
        self._handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        listener = self.listener
        if not listener.admit():
            listener.record("refused")
            _rate_limited.warning(
                "connection limit of %d reached: refusing a new connection", listener.limits.max_connections
            )
            transport.abort()
            return
        self._raw = transport
        handler = self.handler = BoundedRequestHandler(listener.server, listener, loop=listener.loop)
        deadline = listener.loop.time() + listener.limits.header_read_timeout_seconds
        handler.start_header_clock(deadline)
        listener.opened(handler, self)
        transport.pause_reading()
        context = listener.tls_context()
        if context is None:
            transport.set_protocol(handler)
            handler.connection_made(transport)
            transport.resume_reading()
        else:
            self._handshake = listener.loop.create_task(self._start_tls(transport, context, deadline))

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext, deadline: float) -> None:
        handler, loop = self.handler, self.listener.loop
        assert handler is not None
        try:
            transport = await _start_tls(loop, raw, handler, context, max(deadline - loop.time(), 0.01))
        except (OSError, EOFError) as error:
            logger.debug("TLS handshake failed: %s", error)
            self.listener.record("tls-handshake-failed")
            transport = None
        except asyncio.CancelledError:
            raw.abort()
            self.listener.release(handler)
            raise
        finally:
            self._handshake = None
        if transport is None:
            raw.abort()
            self.listener.release(handler)
            return
        handler.connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Called only before HTTP or TLS took the transport over: the client left at once."""
        if self._handshake is not None:
            self._handshake.cancel()
        if self.handler is not None:
            self.listener.release(self.handler)

    def abort(self) -> None:
        if self._handshake is not None:
            self._handshake.cancel()
        if self.handler is not None and self.handler.transport is not None:
            self.handler.transport.abort()
        elif self._raw is not None:
            self._raw.abort()


class Listener:
    """Accepts connections for one aiohttp low-level server within :class:`ConnectionLimits`."""

    def __init__(
        self,
        server: web.Server,
        limits: ConnectionLimits,
        *,
        tls_context: Callable[[], ssl.SSLContext | None] = lambda: None,
        record: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.server = server
        self.limits = limits
        self.tls_context = tls_context
        self.record = record
        self.loop = asyncio.get_running_loop()
        self._fresh: dict[BoundedRequestHandler, _Accepted] = {}
        """Connections that have not sent a whole request yet, oldest first."""
        self._served: dict[BoundedRequestHandler, _Accepted] = {}
        """Connections that have, oldest first."""
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def open_connections(self) -> int:
        return len(self._fresh) + len(self._served)

    def admit(self) -> bool:
        """Room for one more connection: below the cap, or after closing the oldest idle one.

        Connections that never sent a whole request (silent, slow, still in the handshake) go first,
        so a flood of them cannot push out the aggregator's keep-alive connections.
        """
        if self.open_connections < self.limits.max_connections:
            return True
        for connections in (self._fresh, self._served):
            for handler, accepted in connections.items():
                if handler.idle:
                    del connections[handler]
                    self.record("evicted-idle")
                    accepted.abort()
                    return True
        return False

    def opened(self, handler: BoundedRequestHandler, accepted: _Accepted) -> None:
        self._fresh[handler] = accepted

    def served_first_request(self, handler: BoundedRequestHandler) -> None:
        accepted = self._fresh.pop(handler, None)
        if accepted is not None:
            self._served[handler] = accepted

    def release(self, handler: BoundedRequestHandler) -> None:
        self._fresh.pop(handler, None)
        self._served.pop(handler, None)

    async def start(self, host: str, port: int, backlog: int = 1024) -> int:
        """Listen on ``host:port`` (0: any free port) and return the port."""
        self._server = server = await self.loop.create_server(
            lambda: _Accepted(self), host, port, backlog=backlog
        )
        self.port = int(server.sockets[0].getsockname()[1])
        return self.port

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    def abort_all(self) -> None:
        """Close what is left (handshakes under way, connections aiohttp's shutdown did not close)."""
        for accepted in [*self._fresh.values(), *self._served.values()]:
            accepted.abort()
        self._fresh.clear()
        self._served.clear()
