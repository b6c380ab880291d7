"""Delegation of the external-metrics slot: names tidegauge does not hold are forwarded to another adapter.

A cluster has one ``v1beta1.external.metrics.k8s.io`` APIService. With ``--delegate-external-metrics URL``
tidegauge owns it and forwards a request for a metric it does not hold (e.g. KEDA's ``s0-aws-sqs-orders``)
to the other adapter, path, raw query and ``Accept`` unchanged, and passes its status, body and
``Content-Type`` back. The caller has been authorized by tidegauge already; the delegate is called as
tidegauge itself (its ServiceAccount token, re-read when the file changes) over TLS verified with a
configured CA bundle. Which names are held is an in-memory set refreshed in the background, so a request
costs no Redis round trip to decide.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.server import errors
from tidegauge.server.settings import DelegateSettings

logger = logging.getLogger(__name__)
_rate_limited = RateLimitedLog(logger, 10.0)

_PASSED_CONTENT_TYPE = "application/json"
"""What an answer of the delegate without a ``Content-Type`` is passed back as."""


class DelegateUnavailable(errors.ApiError):
    """The delegate could not be asked or did not answer in time: a 503 for the delegated name only."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            503, "ServiceUnavailable", f"unable to fetch metrics from the delegated adapter: {detail}"
        )


@dataclass(frozen=True, slots=True)
class DelegatedAnswer:
    """The delegate's answer as passed back: status, body and ``Content-Type`` unchanged."""

    status: int
    body: bytes
    content_type: str


class TokenFile:
    """A bearer token in a file (the projected ServiceAccount token), re-read whenever the file changes.

    The kubelet rotates a projected token by swapping a symlink; the file's identity (inode, size,
    mtime) is checked with one ``stat`` per call and the token read again only when it changed.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._identity: tuple[int, int, int] | None = None
        self._token = ""

    def token(self) -> str:
        try:
            stat = os.stat(self.path)
            identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if identity != self._identity:
                self._token = Path(self.path).read_text(encoding="utf-8").strip()
                self._identity = identity
        except (OSError, UnicodeDecodeError) as error:
            if not self._token:
                raise DelegateUnavailable(f"cannot read the token file {self.path}: {error}") from error
            _rate_limited.warning(
                "cannot re-read the token file %s, using the last token: %s", self.path, error
            )
        return self._token


class HeldNames:
    """The external metric names tidegauge answers itself: the config's plus the store's, kept in memory.

    :meth:`refresh` (run in the background) asks the store; a failed refresh keeps the last set, so a
    Redis outage never turns tidegauge's own metrics into delegated ones.
    """

    def __init__(self, configured: Iterable[str], list_stored: Callable[[], Awaitable[set[str]]]) -> None:
        self._configured = frozenset(configured)
        self._list_stored = list_stored
        self.names: frozenset[str] = self._configured

    def __contains__(self, name: object) -> bool:
        return name in self.names

    async def refresh(self) -> None:
        stored = await self._list_stored()
        names = self._configured | stored
        if names != self.names:
            logger.info("held external metrics: %d names (%d from the store)", len(names), len(stored))
        self.names = names


def _client_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification of the delegate's serving certificate: the given CA bundle, else the system's."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


class Delegate:
    """Forwards requests to the delegated adapter on one pooled :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        settings: DelegateSettings,
        *,
        record: Callable[[str, float], None] = lambda code, seconds: None,
    ) -> None:
        """``record(code, seconds)`` hears of every forwarded request (``code`` is ``unavailable`` when the
        delegate gave no answer)."""
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        self._ssl = _client_ssl_context(settings.ca_file)
        self._token = TokenFile(settings.token_file) if settings.token_file else None
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._record = record

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self.settings.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=False
            )
        return self._session

    async def forward(self, raw_path: str, raw_query: str, accept: str | None) -> DelegatedAnswer:
        """The delegate's answer to ``GET raw_path?raw_query`` (both still percent-encoded, sent as is)."""
        started = time.perf_counter()
        code = "unavailable"
        try:
            answer = await self._forward(raw_path, raw_query, accept)
            code = str(answer.status)
            return answer
        finally:
            self._record(code, time.perf_counter() - started)

    async def _forward(self, raw_path: str, raw_query: str, accept: str | None) -> DelegatedAnswer:
        headers = {"User-Agent": "tidegauge-delegate", "Accept-Encoding": "identity"}
        if accept is not None:
            headers["Accept"] = accept
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.token()}"
        # encoded=True: sent byte for byte (no re-quoting of %2F and the like in the selector)
        url = URL(self.base_url + raw_path + (f"?{raw_query}" if raw_query else ""), encoded=True)
        limit = self.settings.max_body_bytes
        try:
            async with self._client().get(
                url, headers=headers, allow_redirects=False, skip_auto_headers=("Accept",)
            ) as response:
                body = await _bounded_body(response, limit)
                content_type = response.headers.get("Content-Type", _PASSED_CONTENT_TYPE)
                return DelegatedAnswer(response.status, body, content_type)
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as error:
            _rate_limited.warning("the delegated adapter %s did not answer: %s", self.base_url, error)
            detail = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
            raise DelegateUnavailable(f"{self.base_url} {detail}") from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _bounded_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or :class:`DelegateUnavailable` as soon as it is longer than ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise DelegateUnavailable(f"its answer is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise DelegateUnavailable(f"its answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
