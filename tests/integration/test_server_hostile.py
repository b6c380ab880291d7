"""Hostile clients against the real server over real TLS on loopback (issue 10), with small sizes.

A `tidegauge serve` subprocess (so its RSS can be read) with short bounds set by flags; each attack
is replayed and the test checks that memory stays bounded, connections are cut, and every answer is
a ``Status`` object.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube_fake import FakeKubeApiServer
from tests.support.serve_process import ServeProcess
from tests.support.server_harness import (
    PassThroughStore,
    Pki,
    ServerThread,
    aggregator_headers,
    request,
    server_config,
    settings_for,
)
from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisServer, free_port
from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.settings import AuthenticationFlags, AuthorizationMode, ConnectionLimits
from tidegauge.store import Store

pytestmark = pytest.mark.integration

HEADER_READ_TIMEOUT = 1.5
IDLE_TIMEOUT = 1.0
MAX_CONNECTIONS = 40
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_LINE_BYTES = 4 * 1024
METRIC_PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/sqs_messages"
RESPONSE_CACHE_BYTES = 4 * 1024 * 1024
BIG_METRIC = "hostile_big"
BIG_PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/{BIG_METRIC}"


@dataclass
class Served:
    serving: ServeProcess
    port: int
    metrics_port: int
    pki: Pki

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.serving.process

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def metrics(self) -> str:
        reply = request(self.metrics_port, "/metrics", None)
        assert reply.status == 200
        return reply.body.decode()


def _start(pki: Pki, redis_url: str, flags: list[str], environment: dict[str, str]) -> Served:
    port, metrics_port = free_port(), free_port()
    args = [
        "--bind-address", "127.0.0.1", "--secure-port", str(port),
        "--metrics-bind-address", "127.0.0.1", "--metrics-port", str(metrics_port),
        "--tls-cert-file", pki.cert_file, "--tls-private-key-file", pki.key_file,
        "--client-ca-file", pki.client_ca_file, "--requestheader-client-ca-file", pki.proxy_ca_file,
        "--authentication-skip-lookup", "--authorization-mode", "AlwaysAllowAuthenticated",
        "--redis-url", redis_url, *flags,
    ]  # fmt: skip
    serving = ServeProcess(args, {**environment, "TIDEGAUGE_CONFIG": ""})
    try:
        serving.wait_ready()
    except BaseException:
        serving.stop()
        raise
    return Served(serving, port, metrics_port, pki)


def _finish(server: Served) -> None:
    server.serving.stop()


@pytest.fixture(scope="module", params=["c-parser", "python-parser"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Served]:
    """The server with short bounds, with aiohttp's C parser and its pure-Python one
    (``AIOHTTP_NO_EXTENSIONS``)."""
    pki = Pki(tmp_path_factory.mktemp("hostile-pki"))
    store = Store.connect(ConnectionSettings(redis_server.url))
    labels = ({"queue": f"q{index:04d}", "pad": "p" * 60} for index in range(2500))
    store.write([Sample.of(BIG_METRIC, series, 7, time.time()) for series in labels])
    store.close()
    flags = [
        "--header-read-timeout", str(HEADER_READ_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT),
        "--max-connections", str(MAX_CONNECTIONS), "--max-header-bytes", str(MAX_HEADER_BYTES),
        "--max-header-line-bytes", str(MAX_HEADER_LINE_BYTES),
        "--response-cache-seconds", "60", "--response-cache-bytes", str(RESPONSE_CACHE_BYTES),
    ]  # fmt: skip
    environment = dict(os.environ)
    if request.param == "python-parser":
        environment["AIOHTTP_NO_EXTENSIONS"] = "1"
    server = _start(pki, redis_server.url, flags, environment)
    yield server
    _finish(server)


def test_idle_tls_connections_cost_little_memory(tmp_path: Path, redis_server: RedisServer) -> None:
    # GIVEN a server with its default bounds WHEN 300 TLS connections are opened and left idle
    server = _start(Pki(tmp_path), redis_server.url, [], dict(os.environ))
    try:
        before = server.rss_bytes()
        sockets = [tls_connect(server) for _ in range(300)]
        assert request(server.port, "/livez", server.pki.context(), timeout=5).status == 200
        growth = server.rss_bytes() - before
        for sock in sockets:
            sock.close()
    finally:
        _finish(server)
    # THEN each costs far less than asyncio's default 256 KiB TLS read buffer (75 MiB for 300)
    assert growth < 30 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"


def tls_connect(served: Served | ServerThread, pki: Pki | None = None, client: Any = None) -> ssl.SSLSocket:
    pki = pki or served.pki  # type: ignore[union-attr]
    raw = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    return pki.context(client).wrap_socket(raw, server_hostname="localhost")


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer (status, lower-cased headers, body) read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def assert_status(code: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert code == expected, body
    assert headers["content-type"].startswith("application/json")
    status: dict[str, Any] = json.loads(body)
    assert status["kind"] == "Status"
    assert status["code"] == expected
    return status


def closed_by_server(sock: socket.socket, within: float) -> float:
    """Seconds until the server closed ``sock`` (EOF or reset), failing after ``within`` seconds."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionError, ssl.SSLError):
        pass
    except TimeoutError as error:
        raise AssertionError(f"the server kept the connection open for {within} s") from error
    return time.monotonic() - started


def send_until_cut(sock: ssl.SSLSocket, line: bytes, lines: int) -> int:
    """Send ``GET`` then ``lines`` header lines and never the blank line; bytes sent before the cut."""
    sent = 0
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(lines):
            sock.sendall(line)
            sent += len(line)
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
    return sent


def test_unfinished_header_blocks_are_cut_and_memory_stays_bounded(served: Served) -> None:
    # GIVEN 8 connections each sending 127 header lines of 60,000 bytes (7.6 MB) and never finishing
    before = served.rss_bytes()
    line = b"X-Filler: " + b"a" * 59_988 + b"\r\n"
    sockets = [tls_connect(served) for _ in range(8)]
    sent = [send_until_cut(sock, line, 127) for sock in sockets]
    # THEN each is cut before it could send it all, and the server's memory stays flat
    assert all(count < 127 * len(line) for count in sent), sent
    growth = served.rss_bytes() - before
    for sock in sockets:
        closed_by_server(sock, 5)
        sock.close()
    assert growth < 24 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"


def test_header_block_over_the_total_bound_is_a_431_status(served: Served) -> None:
    # GIVEN header lines each under the line bound, together over the total bound
    sock = tls_connect(served)
    lines = b"".join(b"X-Filler-%d: %s\r\n" % (index, b"b" * 3000) for index in range(8))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines)
    # THEN a 431 Status, and the connection is closed
    code, headers, body = read_answer(sock)
    status = assert_status(code, headers, body, 431)
    assert str(MAX_HEADER_BYTES) in status["message"]
    closed_by_server(sock, 5)
    sock.close()


def test_header_line_over_its_bound_is_a_400_status(served: Served) -> None:
    sock = tls_connect(served)
    long_line = b"X-Long: " + b"c" * (MAX_HEADER_LINE_BYTES + 10) + b"\r\n"
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + long_line + b"\r\n")
    code, headers, body = read_answer(sock)
    assert_status(code, headers, body, 400)
    sock.close()


def test_silent_and_slowloris_connections_are_cut_by_the_header_read_timeout(served: Served) -> None:
    # GIVEN one TLS connection that sends nothing and one that sends a header byte every 0.2 s
    silent = tls_connect(served)
    slow = tls_connect(served)
    started = time.monotonic()
    slow.sendall(b"GET /healthz HTTP/1.1\r\n")
    slow.settimeout(0.2)
    cut = False
    for _ in range(int(4 * HEADER_READ_TIMEOUT / 0.2)):
        try:
            slow.sendall(b"X")
            if slow.recv(1) == b"":
                cut = True
                break
        except TimeoutError:
            continue
        except (ConnectionError, ssl.SSLError):
            cut = True
            break
    slow_seconds = time.monotonic() - started
    # THEN both are closed once the header-read timeout has passed, not later
    assert cut, "the slowloris connection was never cut"
    assert HEADER_READ_TIMEOUT * 0.8 <= slow_seconds <= HEADER_READ_TIMEOUT + 2
    closed_by_server(silent, HEADER_READ_TIMEOUT + 2)
    for sock in (silent, slow):
        sock.close()
    assert 'tidegauge_connections_closed_total{reason="header-timeout"}' in served.metrics()


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(served: Served) -> None:
    # GIVEN a keep-alive connection that got its answer
    sock = tls_connect(served)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    code, _, body = read_answer(sock)
    assert (code, body) == (200, b"ok")
    # THEN the server closes it once idle for the idle timeout (not aiohttp's default hour)
    assert closed_by_server(sock, IDLE_TIMEOUT + 3) >= IDLE_TIMEOUT * 0.8
    sock.close()


def test_connections_beyond_the_cap_close_the_oldest_silent_ones_and_probes_answer(served: Served) -> None:
    # GIVEN a keep-alive client that got an answer, then as many silent TLS connections as the cap
    # allows, and ten more
    keeper = tls_connect(served)
    keeper.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_answer(keeper)[0] == 200
    sockets = [tls_connect(served) for _ in range(MAX_CONNECTIONS + 10)]
    # WHEN a probe connects THEN it is answered, the oldest silent connections were closed, counted
    assert request(served.port, "/livez", served.pki.context(), timeout=5).status == 200
    for sock in sockets[:11]:
        closed_by_server(sock, 2)
    metrics = served.metrics()
    open_now = next(line for line in metrics.splitlines() if line.startswith("tidegauge_connections_open "))
    assert float(open_now.split()[1]) <= MAX_CONNECTIONS
    assert 'tidegauge_connections_closed_total{reason="evicted-idle"}' in metrics
    # AND the keep-alive client that had sent a request kept its connection
    keeper.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_answer(keeper)[0] == 200
    for sock in [keeper, *sockets]:
        sock.close()


def big_answers(served: Served, queries: Iterator[str]) -> list[int]:
    """Sizes of the answers to ``BIG_PATH?<query>`` on one keep-alive connection of an authorized user."""
    user = served.pki.client_ca.issue("jane")
    connection = http.client.HTTPSConnection("127.0.0.1", served.port, context=served.pki.context(user))
    sizes = []
    try:
        for query in queries:
            connection.request("GET", f"{BIG_PATH}?{query}")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, body[:300]
            sizes.append(len(body))
    finally:
        connection.close()
    return sizes


@pytest.mark.parametrize(
    "query",
    [
        # 200 requests for one answer, each with a different unknown parameter: one cached entry
        pytest.param(f"labelSelector=pad%3D{'p' * 60}&pretty={{index}}", id="query-variants-share-one-entry"),
        # 200 different selectors, each answered with all series (80 MB if all were kept): the byte bound
        pytest.param("labelSelector=queue!%3Dnone{index}", id="distinct-selectors-bounded-by-bytes"),
    ],
)
def test_cached_answers_do_not_pin_memory(served: Served, query: str) -> None:
    # GIVEN 200 requests for ~400 KB answers
    before = served.rss_bytes()
    sizes = big_answers(served, (query.format(index=index) for index in range(200)))
    # THEN memory does not grow with them
    assert min(sizes) > 300_000
    growth = served.rss_bytes() - before
    assert growth < 16 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"


def raw_exchange(
    served: Served | ServerThread, request_bytes: bytes, client: Any = None, pki: Pki | None = None
) -> tuple[int, dict[str, str], bytes]:
    sock = tls_connect(served, pki, client)
    try:
        sock.sendall(request_bytes)
        return read_answer(sock)
    finally:
        sock.close()


@pytest.mark.parametrize("path", ["/apis/%0A", METRIC_PATH.replace("sqs_messages", "a%0D%0Ab")])
def test_paths_with_newlines_reach_the_handler_and_answer_a_status(served: Served, path: str) -> None:
    request_bytes = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    # anonymous: 401 Status (authentication ran)
    assert_status(*raw_exchange(served, request_bytes), 401)
    # authenticated: 404 Status
    user = served.pki.client_ca.issue("jane")
    assert_status(*raw_exchange(served, request_bytes, client=user), 404)


def test_connect_and_unknown_methods_answer_a_status(served: Served) -> None:
    user = served.pki.client_ca.issue("jane")
    connect = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    assert_status(*raw_exchange(served, connect), 401)
    status = assert_status(*raw_exchange(served, connect, client=user), 405)
    assert "CONNECT" in status["message"]
    propfind = f"PROPFIND {METRIC_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert_status(*raw_exchange(served, propfind, client=user), 405)


def test_non_utf8_expect_header_is_answered_with_a_status_not_a_500(served: Served) -> None:
    request_bytes = f"GET {METRIC_PATH} HTTP/1.1\r\nHost: x\r\nExpect: ".encode() + b"\xff\xfe\x80\r\n\r\n"
    assert_status(*raw_exchange(served, request_bytes), 401)


def test_expect_100_continue_gets_no_interim_answer_before_authentication(served: Served) -> None:
    request_bytes = f"GET {METRIC_PATH} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n".encode()
    # THEN the first answer is the final 401, not "100 Continue"
    assert_status(*raw_exchange(served, request_bytes), 401)


def test_malformed_requests_log_one_line_without_a_traceback(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    pki = Pki(tmp_path)
    limits = ConnectionLimits(max_header_line_bytes=MAX_HEADER_LINE_BYTES)
    caplog.set_level(logging.DEBUG)
    with ServerThread(settings_for(pki, connections=limits), server_config(redis_server.url)) as server:
        caplog.clear()
        # GIVEN 30 anonymous malformed requests of three kinds
        for _ in range(10):
            for request_bytes in (
                b"GET /healthz HTTP/1.1\r\nX-Long: " + b"d" * (MAX_HEADER_LINE_BYTES + 1) + b"\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                b"GET /\x00 HTTP/1.1\r\n\r\n",
            ):
                code, headers, body = raw_exchange(server, request_bytes, pki=pki)
                assert_status(code, headers, body, 400)
        # THEN no traceback, and at most one line per kind of failure per interval
        records = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("tidegauge")]
        assert all(record.exc_info is None for record in caplog.records)
        assert len(records) <= 3, [r.getMessage() for r in records]
        assert server.server.services.telemetry.connections_closed.value("malformed-request") == 30
        assert request(server.port, "/healthz", pki.context()).status == 200
        reply = request(server.port, METRIC_PATH, pki.context(pki.aggregator), aggregator_headers())
        assert reply.status in (200, 404)


class SlowStore(PassThroughStore):
    """An AsyncStore whose metric reads take ``delay_seconds`` (a slow Redis)."""

    def __init__(self, store: AsyncStore, delay_seconds: float) -> None:
        super().__init__(store)
        self.delay_seconds = delay_seconds

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        await asyncio.sleep(self.delay_seconds)
        return await self.store.read_latest(metric, selector)


def test_request_timeout_is_one_deadline_across_authentication_authorization_and_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # GIVEN TokenReview, SubjectAccessReview and the Redis read each taking 1 s, each under its own
    # per-call bound, and a request timeout of 2 s
    pki = Pki(tmp_path)
    kube = FakeKubeApiServer(tmp_path).start()
    try:
        kube.tokens["slow-token"] = {"username": "jane", "uid": "1", "groups": []}
        kube.allow = lambda spec: True
        kube.delay_seconds = 1.0
        kubeconfig = kube.write_kubeconfig()
        flags = AuthenticationFlags(authentication_kubeconfig=kubeconfig, skip_lookup=True)
        settings = settings_for(
            pki,
            authentication=flags,
            authorization_mode=AuthorizationMode.WEBHOOK,
            authorization_kubeconfig=kubeconfig,
            request_timeout_seconds=2.0,
        )
        slow = SlowStore(AsyncStore.connect(ConnectionSettings(redis_server.url, cluster=False)), 1.0)
        with ServerThread(settings, server_config(redis_server.url), store=slow) as server:
            started = time.monotonic()
            reply = request(server.port, METRIC_PATH, pki.context(), [("Authorization", "Bearer slow-token")])
            elapsed = time.monotonic() - started
    finally:
        kube.stop()
    # THEN the answer is a 503 Status at the deadline, not after the three calls' 3 s
    assert reply.status == 503, reply.body
    assert reply.json()["reason"] == "ServiceUnavailable", reply.body
    assert "request timeout of 2 s" in reply.json()["message"]
    assert elapsed < 2.8


class BlockedStore(SlowStore):
    """Metric reads wait until ``release`` is set (requests kept in progress)."""

    def __init__(self, store: AsyncStore) -> None:
        super().__init__(store, 0.0)
        self.reading = threading.Semaphore(0)
        self.release: asyncio.Event | None = None

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        if self.release is None:
            self.release = asyncio.Event()
        self.reading.release()
        await self.release.wait()
        return await self.store.read_latest(metric, selector)


def test_connection_beyond_the_cap_with_none_idle_is_refused_at_accept_and_counted(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    pki = Pki(tmp_path)
    blocked = BlockedStore(AsyncStore.connect(ConnectionSettings(redis_server.url, cluster=False)))
    settings = settings_for(pki, connections=ConnectionLimits(max_connections=2), request_timeout_seconds=30)
    with ServerThread(settings, server_config(redis_server.url), store=blocked) as server:
        # GIVEN as many connections as the cap, each with a request in progress
        arguments = (server.port, METRIC_PATH, pki.context(pki.aggregator), aggregator_headers())
        clients = [threading.Thread(target=request, args=arguments) for _ in range(2)]
        for client in clients:
            client.start()
        assert blocked.reading.acquire(timeout=10)
        assert blocked.reading.acquire(timeout=10)
        # WHEN one more client connects THEN it is closed at once, and counted
        with pytest.raises((ConnectionError, ssl.SSLError)):
            request(server.port, "/livez", pki.context(), timeout=5)
        assert server.server.services.telemetry.connections_closed.value("refused") >= 1
        # AND once the requests finish, new connections are served again
        assert blocked.release is not None
        server.loop.call_soon_threadsafe(blocked.release.set)
        for client in clients:
            client.join(10)
        assert request(server.port, "/livez", pki.context()).status == 200
