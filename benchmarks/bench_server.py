"""External-metric GETs over TLS with keep-alive, against a fixed-body aiohttp TLS handler in the same run.

The server under test is the real one (front-proxy client certificate, ``X-Remote-*`` headers,
``system:masters``, real Redis). The baseline is an aiohttp handler on the same kind of TLS context that
returns, as a fixed body, the very bytes the server answers, so the ratio isolates the server's own
work. Load comes from a separate process (``python -m benchmarks.bench_server --load ...``): an aiohttp
client with a few keep-alive connections, bounded in time, on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from tidegauge.server.settings import AuthenticationFlags, ServerSettings

TITLE = "Aggregated API server: external-metric GET over TLS"
SERIES_COUNTS = (10, 1_000, 10_000)
CONNECTIONS = 4
T = TypeVar("T")

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
defaults: {max_age_seconds: 86400}
sources:
  - {name: bench, type: sqs, region: eu-west-1, queues: {names: [bench]}}
"""


class _Loop:
    """An event loop in a daemon thread, for servers measured from another process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def loopback_settings(
    cert: str, key: str, authentication: AuthenticationFlags, **overrides: Any
) -> ServerSettings:
    """The benches' server: loopback, an ephemeral secure port, no metrics port, any authenticated caller
    allowed (the benches measure serving, not authorization)."""
    from tidegauge.server.settings import AuthorizationMode, ServerSettings

    return ServerSettings(
        bind_address="127.0.0.1",
        secure_port=0,
        metrics_port=None,
        tls_cert_file=cert,
        tls_private_key_file=key,
        authentication=authentication,
        authorization_mode=AuthorizationMode.ALWAYS_ALLOW_AUTHENTICATED,
        **overrides,
    )


async def _baseline(body: bytes, cert: str, key: str, client_ca: bytes) -> tuple[web.AppRunner, int]:
    from tidegauge.server.tls import create_ssl_context

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=create_ssl_context(cert, key, client_ca))
    await site.start()
    return runner, int(runner.addresses[0][1])


def _load(port: int, path: str, ca: str, cert: str, key: str, seconds: float) -> dict[str, float]:
    """Run the load generator process against ``port`` and return its figures."""
    command = [sys.executable, "-m", "benchmarks.bench_server", "--load", str(port), path, ca, cert, key]
    command += [str(seconds), str(CONNECTIONS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run(quick: bool) -> str:
    from tests.support.pki import CertificateAuthority
    from tidegauge.config import parse_config
    from tidegauge.localredis import RedisServer
    from tidegauge.model import Sample
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.server.runner import Server
    from tidegauge.server.settings import AuthenticationFlags
    from tidegauge.store import Store

    seconds, repeats = (1.5, 1) if quick else (4.0, 3)
    workdir = Path(tempfile.mkdtemp(prefix="tidegauge-bench-"))
    server_ca, proxy_ca = CertificateAuthority("server-ca"), CertificateAuthority("proxy-ca")
    cert, key = server_ca.issue_server().write(workdir, "serving")
    (workdir / "server-ca.crt").write_bytes(server_ca.pem)
    (workdir / "proxy-ca.crt").write_bytes(proxy_ca.pem)
    client_cert, client_key = proxy_ca.issue("front-proxy-client").write(workdir, "proxy")
    ca = str(workdir / "server-ca.crt")
    rows: list[str] = []
    figures: dict[tuple[int, str], dict[str, float]] = {}
    with RedisServer() as redis:
        store = Store.connect(ConnectionSettings(redis.url), history_length=0)
        now = time.time()
        for count in SERIES_COUNTS:
            store.write(
                Sample.of(f"bench_{count}", {"queue": f"q{i:05d}", "state": "visible"}, i * 1.5, now - i % 30)
                for i in range(count)
            )
        store.close()
        config = parse_config(CONFIG, "<bench>", redis_url=redis.url, environ={})
        loop = _Loop()
        servers = {}
        for name, cache_seconds in (("cached", 1.0), ("uncached", 0.0)):
            authentication = AuthenticationFlags(
                requestheader_client_ca_file=str(workdir / "proxy-ca.crt"), skip_lookup=True
            )
            settings = loopback_settings(cert, key, authentication, response_cache_seconds=cache_seconds)
            servers[name] = Server(settings, config)
            loop.call(servers[name].start())
        try:
            for count in SERIES_COUNTS:
                path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/default/bench_{count}"
                body = _fetch(servers["cached"].secure_port, path, ca, client_cert, client_key)
                runner, baseline_port = loop.call(_baseline(body, cert, key, proxy_ca.pem))
                results: dict[str, list[dict[str, float]]] = {"baseline": [], "cached": [], "uncached": []}
                for _ in range(repeats):
                    for target, port in (
                        ("baseline", baseline_port),
                        ("cached", servers["cached"].secure_port),
                        ("uncached", servers["uncached"].secure_port),
                    ):
                        results[target].append(_load(port, path, ca, client_cert, client_key, seconds))
                loop.call(runner.cleanup())
                base = _median_of(results["baseline"])
                for target in ("baseline", "cached", "uncached"):
                    m = _median_of(results[target])
                    figures[(count, target)] = {**m, "ratio": m["rps"] / base["rps"]}
                    ratio = m["rps"] / base["rps"]
                    rows.append(
                        f"| {count:,} | {len(body) / 1024:,.0f} KiB | {target} | {m['rps']:,.0f} | "
                        f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {ratio:.2f} |"
                    )
        finally:
            for server in servers.values():
                loop.call(server.stop())
            loop.close()
    return _report(rows, seconds, repeats) + "\n\n" + _verdict(figures)


def _fetch(port: int, path: str, ca: str, cert: str, key: str) -> bytes:
    import http.client

    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    headers = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
    return body


def _report(rows: list[str], seconds: float, repeats: int) -> str:
    lines = [
        f"{CONNECTIONS} keep-alive TLS connections from a separate client process, {seconds:g} s per run, "
        f"median of {repeats} run(s) per row; latency measured by the client (request sent to body read).",
        "`cached`: default settings (identical requests within 1 s share one rendered body; the metric's "
        "in-memory view is refreshed from Redis's change feed at most every 0.5 s); `uncached`: "
        "`--response-cache-seconds 0` (every request first asks Redis what changed, one round trip, then "
        "joins every series' JSON, each rendered once per change). Ratio = requests/s ÷ baseline requests/s.",
        "",
        "| series | body | target | requests/s | p50 ms | p99 ms | ratio |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        *rows,
    ]
    return "\n".join(lines)


def _verdict(figures: dict[tuple[int, str], dict[str, float]]) -> str:
    cached, uncached = figures[(1_000, "cached")], figures[(1_000, "uncached")]
    met = cached["ratio"] >= 0.6 and cached["p99_ms"] < 10
    lines = [
        f"**Goal (≥ 0.6 of the baseline at 1,000 series, p99 < 10 ms): {'met' if met else 'MISSED'} with the "
        f"default settings** (ratio {cached['ratio']:.2f}, p99 {cached['p99_ms']:.1f} ms). "
        f"Without the response cache: ratio {uncached['ratio']:.2f}, p99 {uncached['p99_ms']:.1f} ms.",
        "",
        f"Why: the server is one event loop, so 1 / uncached requests/s bounds the CPU one uncached request "
        f"costs: {1000 / uncached['rps']:.1f} ms at 1,000 series and "
        f"{1000 / figures[(10_000, 'uncached')]['rps']:.1f} ms at 10,000 on this machine. These requests "
        "select EVERY series, so the answer itself grows with the metric (joining its pre-rendered items, "
        "and the body's bytes over TLS, which the baseline pays too); a request for one queue costs the "
        "same at any size (see the fleet-scale section). Reading Redis no longer scales with the metric: "
        "a refresh reads only the series that changed since the view's version (the change feed), and a "
        "full read goes in HSCAN steps that never hold the loop for long.",
    ]
    return "\n".join(lines)


# --- the load generator (runs in its own process) ----------------------------------------------------


async def _generate(
    port: int, path: str, ca: str, cert: str, key: str, seconds: float, connections: int
) -> None:
    import aiohttp

    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    headers = {
        "X-Remote-User": "system:kube-aggregator",
        "X-Remote-Group": "system:masters",
        "Accept": "application/vnd.kubernetes.protobuf, */*",
    }
    url = f"https://127.0.0.1:{port}{path}"
    connector = aiohttp.TCPConnector(ssl=context, limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")

        figures = await measure(one, seconds, connections)
    print(json.dumps(figures))


async def measure(call: Callable[[], Awaitable[None]], seconds: float, concurrency: int) -> dict[str, float]:
    """``concurrency`` loops of ``call`` for ``seconds`` after a short warm-up: rate, p50 and p99 (ms)."""
    latencies: list[float] = []

    async def worker(deadline: float, record: bool) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            if record:
                latencies.append(time.perf_counter() - started)

    warmup = time.perf_counter() + min(0.5, seconds / 4)
    await asyncio.gather(*(worker(warmup, False) for _ in range(concurrency)))
    started = time.perf_counter()
    await asyncio.gather(*(worker(started + seconds, True) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--load", nargs=7, metavar=("PORT", "PATH", "CA", "CERT", "KEY", "SECONDS", "CONNECTIONS")
    )
    args = parser.parse_args()
    port, path, ca, cert, key, seconds, connections = args.load
    asyncio.run(_generate(int(port), path, ca, cert, key, float(seconds), int(connections)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
