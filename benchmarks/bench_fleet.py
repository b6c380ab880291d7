"""Fleet scale on the server: cache-miss GETs that each ask for one queue, a paced fleet of HPAs, and
what refreshing the server's view of Redis costs; every figure beside a baseline from the same run.

- Selective GETs: the real server (TLS, front-proxy headers, real Redis) and, as the baseline, an
  aiohttp TLS handler returning the same bytes; 8 keep-alive connections from a separate process,
  every request a different ``labelSelector=queue=qNNNNN``, so every one misses the response cache.
  Server CPU is the CPU time of the server's event-loop thread (``pthread_getcpuclockid``).
- Fleet: 10,000 HPAs each asking every 15 s (about 667 requests/s, distinct selectors), paced open
  loop from a separate process for a bounded time: server CPU cores used, and p99.
- Refresh: the view (:class:`tidegauge.server.view.FollowedMetric`) after K of 10,000 queues changed,
  against the read the server did before the change feed (HGETALL of the whole metric, parsed and
  rendered); and the longest event-loop block during a full re-read, seen by a task ticking every 1 ms,
  with the cyclic collector as before, with the held series frozen (:mod:`tidegauge.server.heap`, as
  ``tidegauge serve`` runs) and with the collector off, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_server import _baseline, _fetch, _Loop, loopback_settings

TITLE = "Aggregated API server at fleet scale: cache misses, 10,000 HPAs, refresh cost"
SIZES = ((1_000, "3,000"), (10_000, "30,000"))
"""Queues (three series each, one per state) and the metric's series count as printed."""
STATES = ("visible", "in_flight", "delayed")
CONNECTIONS = 8
FLEET_HPAS = 10_000
FLEET_PERIOD_SECONDS = 15.0
FLEET_CONNECTIONS = 32
SCAN_CALLS = 50
"""Requests timed for the scan baseline (a scan of 30,000 series costs milliseconds each)."""
FROZEN = "tidegauge, frozen"
"""The default server again, with the series it holds frozen (``gc.freeze()``), as ``tidegauge serve``."""
REFRESH_QUEUES = 10_000
REFRESH_CHANGES = (1, 100, 10_000)
PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/"
CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
defaults: {max_age_seconds: 86400}
sources:
  - {name: bench, type: sqs, region: eu-west-1, queues: {names: [bench]}}
"""


def _metric(queues: int) -> str:
    return f"fleet_{queues}"


def _samples(metric: str, queues: int, value: float, now: float, only: int | None = None) -> list[Any]:
    from tidegauge.model import Sample

    return [
        Sample.of(metric, {"queue": f"q{n:05d}", "state": state}, value + n, now, source="bench")
        for n in range(queues if only is None else only)
        for state in STATES
    ]


class _Cpu:
    """CPU seconds of one thread (the servers' event loop), read from another thread."""

    def __init__(self, thread: threading.Thread) -> None:
        assert thread.ident is not None
        self._clock = time.pthread_getcpuclockid(thread.ident)

    def __call__(self) -> float:
        return time.clock_gettime(self._clock)


def _load(port: int, metric: str, tls: tuple[str, str, str], *options: float) -> dict[str, float]:
    """Run the load generator process against ``port``; returns its figures."""
    command = [sys.executable, "-m", "benchmarks.bench_fleet", "--load", str(port), PATH + metric, *tls]
    command += [str(option) for option in options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _measured(
    cpu: _Cpu, port: int, metric: str, tls: tuple[str, str, str], *options: float
) -> dict[str, float]:
    before = cpu()
    figures = _load(port, metric, tls, *options)
    used = cpu() - before
    return {
        **figures,
        "cpu_ms_per_request": used * 1000 / max(1.0, figures["requests_total"]),
        "cores": used / figures["wall_seconds"],
    }


def _warm(port: int, path: str, tls: tuple[str, str, str]) -> bytes:
    """The answer once the server has read the metric (its first full read may outlast a request)."""
    for _attempt in range(60):
        try:
            return _fetch(port, path, *tls)
        except RuntimeError:
            time.sleep(0.5)
    return _fetch(port, path, *tls)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run(quick: bool) -> str:
    from tests.support.pki import CertificateAuthority
    from tidegauge.config import parse_config
    from tidegauge.localredis import RedisServer
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.server import heap
    from tidegauge.server.runner import Server
    from tidegauge.server.settings import AuthenticationFlags
    from tidegauge.store import Store

    seconds, repeats, fleet_seconds = (1.5, 1, 5.0) if quick else (4.0, 3, 20.0)
    workdir = Path(tempfile.mkdtemp(prefix="tidegauge-bench-"))
    server_ca, proxy_ca = CertificateAuthority("server-ca"), CertificateAuthority("proxy-ca")
    cert, key = server_ca.issue_server().write(workdir, "serving")
    (workdir / "server-ca.crt").write_bytes(server_ca.pem)
    (workdir / "proxy-ca.crt").write_bytes(proxy_ca.pem)
    client_cert, client_key = proxy_ca.issue("front-proxy-client").write(workdir, "proxy")
    tls = (str(workdir / "server-ca.crt"), client_cert, client_key)
    figures: dict[tuple[str, str], dict[str, float]] = {}
    with RedisServer() as redis:
        store = Store.connect(ConnectionSettings(redis.url), history_length=0)
        now = time.time()
        for queues, _label in SIZES:
            store.write(_samples(_metric(queues), queues, 1.0, now))
        store.close()
        config = parse_config(CONFIG, "<bench>", redis_url=redis.url, environ={})
        loop = _Loop()
        cpu = _Cpu(loop.thread)
        servers: dict[str, Any] = {}
        for name, cache_seconds in (("tidegauge", 1.0), ("tidegauge, cache 0", 0.0)):
            authentication = AuthenticationFlags(
                requestheader_client_ca_file=str(workdir / "proxy-ca.crt"), skip_lookup=True
            )
            settings = loopback_settings(cert, key, authentication, response_cache_seconds=cache_seconds)
            servers[name] = Server(settings, config)
            loop.call(servers[name].start())
        try:
            for queues, label in SIZES:
                metric = _metric(queues)
                for server in servers.values():
                    body = _warm(server.secure_port, PATH + metric + "?labelSelector=queue%3Dq00001", tls)
                runner, baseline_port = loop.call(_baseline(body, cert, key, proxy_ca.pem))
                ports = {"baseline": baseline_port} | {n: s.secure_port for n, s in servers.items()}
                ports[FROZEN] = ports["tidegauge"]  # the same server, with what it holds frozen
                results: dict[str, list[dict[str, float]]] = {target: [] for target in ports}
                for _ in range(repeats):
                    for target, port in ports.items():
                        _frozen(heap, target)
                        results[target].append(
                            _measured(cpu, port, metric, tls, seconds, CONNECTIONS, queues, 0.0)
                        )
                        heap.disable()
                if queues == REFRESH_QUEUES:
                    rate = FLEET_HPAS / FLEET_PERIOD_SECONDS
                    for target in ("baseline", "tidegauge", FROZEN):
                        _frozen(heap, target)
                        figures[("fleet", target)] = _measured(
                            cpu, ports[target], metric, tls, fleet_seconds, FLEET_CONNECTIONS, queues, rate
                        ) | {"load": os.getloadavg()[0]}
                        heap.disable()
                loop.call(runner.cleanup())
                for target in ports:
                    figures[(label, target)] = _median(results[target])
        finally:
            for server in servers.values():
                loop.call(server.stop())
            loop.close()
        refresh_repeats = 3 if quick else 5
        refresh = asyncio.run(_refresh_costs(redis.url, refresh_repeats))
        heap.enable()  # the same with the held series frozen, as `tidegauge serve` runs
        try:
            frozen = asyncio.run(_refresh_costs(redis.url, refresh_repeats))
        finally:
            heap.disable()
        gc.disable()  # and without the cyclic collector: which blocks are its full passes
        try:
            without_gc = asyncio.run(_refresh_costs(redis.url, refresh_repeats))
        finally:
            gc.enable()
        for name, costs in without_gc.items():
            refresh[name]["max_block_cpu_no_gc_ms"] = costs["max_block_cpu_ms"]
        for name, costs in frozen.items():
            refresh[name] |= {f"frozen_{key}": value for key, value in costs.items()}
        lookups = asyncio.run(_lookup_costs(redis.url, 500 if quick else 3_000, 3 if quick else 5))
    report = _report(figures, refresh, seconds, repeats, fleet_seconds, refresh_repeats)
    return report + "\n\n" + _lookup_report(lookups)


def _frozen(heap: Any, target: str) -> None:
    """Freeze what the process holds before measuring the ``FROZEN`` target (its views are read)."""
    if target == FROZEN:
        heap.enable()


# --- the provider alone, in this process ------------------------------------------------------------


async def _lookup_costs(url: str, calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """CPU per ``get_external_metric`` for one queue, against the scan of every series it replaced."""
    from tidegauge.async_store import AsyncStore
    from tidegauge.config import parse_config
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.selectors import EVERYTHING, parse_selector
    from tidegauge.server.provider import ExternalMetricsProvider

    config = parse_config(CONFIG, "<bench>", redis_url=url, environ={})
    reader = AsyncStore.connect(ConnectionSettings(url), cluster=False)
    provider = ExternalMetricsProvider(reader, config, refresh_seconds=3600.0, read_timeout_seconds=120.0)
    costs: dict[str, dict[str, float]] = {}
    try:
        for queues, label in SIZES:
            metric = _metric(queues)
            selectors = [parse_selector(f"queue=q{(n * 7919) % queues:05d}") for n in range(calls)]
            await provider.get_external_metric("default", selectors[0], metric)
            held = await provider._series(metric)  # the view the provider answers from
            for selector in selectors:  # render every answer once, as a warm server has
                await provider.get_external_metric("default", selector, metric)
            indexed, scanned = [], []
            for _ in range(repeats):
                started = time.thread_time()
                for selector in selectors:
                    await provider.get_external_metric("default", selector, metric)
                indexed.append((time.thread_time() - started) / calls)
                started = time.thread_time()
                for selector in selectors[:SCAN_CALLS]:
                    [series for series in held.select(EVERYTHING) if selector.matches(series.labels)]
                scanned.append((time.thread_time() - started) / SCAN_CALLS)
            costs[label] = {
                "indexed_us": statistics.median(indexed) * 1e6,
                "scan_us": statistics.median(scanned) * 1e6,
            }
    finally:
        await reader.close()
    return costs


def _lookup_report(costs: dict[str, dict[str, float]]) -> str:
    lines = [
        "**The provider alone** (in this process, no HTTP): CPU per `get_external_metric` for one queue "
        "(3 items) from a warm view, against the baseline of the per-request work it replaced: matching "
        "the selector against every series of the metric, in label order.",
        "",
        "| series | provider µs per request | scan of every series µs | ratio |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for label, m in costs.items():
        lines.append(
            f"| {label} | {m['indexed_us']:.1f} | {m['scan_us']:,.0f} | "
            f"{m['indexed_us'] / m['scan_us']:.4f} |"
        )
    return "\n".join(lines)


# --- refresh cost, in this process --------------------------------------------------------------------


async def _refresh_costs(url: str, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall/CPU of a refresh after K changed queues, and of the pre-feed whole-metric read."""
    from tidegauge.async_store import AsyncStore
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.server.provider import _series_of
    from tidegauge.server.view import FollowedMetric
    from tidegauge.store import Store

    metric = "refresh_bench"
    writer = Store.connect(ConnectionSettings(url), history_length=0)
    writer.write(_samples(metric, REFRESH_QUEUES, 1.0, time.time()))
    reader = AsyncStore.connect(ConnectionSettings(url), cluster=False)

    def ignore(_metric: str, _label: str, error: Exception) -> None:
        raise error

    view = FollowedMetric(metric, reader, ignore)
    await view.refresh()
    costs: dict[str, dict[str, float]] = {}
    try:
        for changed in REFRESH_CHANGES:
            runs: list[dict[str, float]] = []
            for repeat in range(repeats):
                writer.write(_samples(metric, REFRESH_QUEUES, 2.0 + repeat, time.time(), only=changed))
                read_before = view.series_read
                runs.append(await _timed(view.refresh()) | {"fields": view.series_read - read_before})
            costs[f"after {changed:,} queues changed"] = _median(runs)
        old: list[dict[str, float]] = []
        previous = None
        for _ in range(repeats):

            async def whole() -> None:
                nonlocal previous
                previous = _series_of(metric, await reader.read_latest(metric), previous, ignore)

            old.append(await _timed(whole()) | {"fields": float(REFRESH_QUEUES * len(STATES))})
        costs["whole HGETALL"] = _median(old)
        full: list[dict[str, float]] = []
        memory: dict[str, float] = {}
        for repeat in range(repeats):
            view.position = None  # as at start, or after a gap: read everything
            full.append(await _timed(view.refresh()) | {"fields": float(REFRESH_QUEUES * len(STATES))})
            memory |= _memory("first" if repeat == 0 else "last")
        costs["full HSCAN"] = _median(full) | memory
    finally:
        await reader.close()
        writer.close()
    return costs


def _memory(when: str) -> dict[str, float]:
    """Objects in the permanent generation and Python's allocated memory blocks, keyed by ``when``."""
    return {f"frozen_{when}": float(gc.get_freeze_count()), f"blocks_{when}": float(sys.getallocatedblocks())}


async def _timed(work: Any) -> dict[str, float]:
    """Wall and CPU time of ``work``, and the longest gap a task ticking every 1 ms saw meanwhile."""
    longest = longest_cpu = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal longest, longest_cpu
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not stop:
            await asyncio.sleep(0.001)
            tick, tick_cpu = time.perf_counter(), time.thread_time()
            longest = max(longest, tick - last - 0.001)
            longest_cpu = max(longest_cpu, tick_cpu - last_cpu)
            last, last_cpu = tick, tick_cpu

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.005)
    started, cpu = time.perf_counter(), time.thread_time()
    await work
    wall, used = time.perf_counter() - started, time.thread_time() - cpu
    stop = True
    await ticking
    return {
        "wall_ms": wall * 1000,
        "cpu_ms": used * 1000,
        "max_block_ms": longest * 1000,
        "max_block_cpu_ms": longest_cpu * 1000,
    }


# --- the report -----------------------------------------------------------------------------------


def _report(
    figures: dict[tuple[str, str], dict[str, float]],
    refresh: dict[str, dict[str, float]],
    seconds: float,
    repeats: int,
    fleet_seconds: float,
    refresh_repeats: int,
) -> str:
    lines = [
        "The machine has 2 cores (the load average during the fleet run is given below): figures are "
        f"medians of {repeats} run(s) of {seconds:g} s, each beside its baseline in the same run; "
        "read the ratios more than the absolute figures.",
        "",
        f"**Cache-miss selective GET**: {CONNECTIONS} keep-alive TLS connections from a separate process, "
        "every request a different `labelSelector=queue=qNNNNN` (3 items), so no request hits the "
        "response cache. `tidegauge`: default settings (the metric's view refreshed from the change feed "
        "at most every 0.5 s); `tidegauge, cache 0`: `--response-cache-seconds 0` (every request first "
        "asks Redis what changed: one round trip); `tidegauge, frozen`: the default server again, measured "
        "right after `gc.freeze()` moved what the process holds into the permanent generation (as "
        "`tidegauge serve` does after a large read). Baseline: an aiohttp TLS handler returning the same "
        "bytes. CPU per request: the server's event-loop thread.",
        "",
        "| series | target | requests/s | ratio | p50 ms | p99 ms | server CPU per request |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for _queues, label in SIZES:
        base = figures[(label, "baseline")]
        for target in ("baseline", "tidegauge", FROZEN, "tidegauge, cache 0"):
            m = figures[(label, target)]
            lines.append(
                f"| {label} | {target} | {m['rps']:,.0f} | {m['rps'] / base['rps']:.2f} | "
                f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['cpu_ms_per_request']:.3f} ms |"
            )
    lines.append("")
    for target in ("tidegauge", FROZEN):
        lines.append(f"Goals, `{target}`: " + _selective_goals(figures, target))
    lines.append("")
    large = figures[(SIZES[1][1], "tidegauge")]
    fleet, fleet_base = figures[("fleet", "tidegauge")], figures[("fleet", "baseline")]
    rate = FLEET_HPAS / FLEET_PERIOD_SECONDS
    lines += [
        f"**Fleet**: {FLEET_HPAS:,} HPAs each asking every {FLEET_PERIOD_SECONDS:g} s over 30,000 series "
        f"({rate:,.0f} requests/s, each a different queue), paced open loop for {fleet_seconds:g} s over "
        f"up to {FLEET_CONNECTIONS} keep-alive connections. Latency from each request's send; 'sent late "
        "p99': how far behind its schedule the client sent (the client is one Python process on the same "
        "2 cores).",
        "",
        "| target | requests/s done | errors | p50 ms | p99 ms | sent late p99 ms | server CPU cores |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for target, m in (("baseline", fleet_base), ("tidegauge", fleet), (FROZEN, figures[("fleet", FROZEN)])):
        lines.append(
            f"| {target} | {m['rps']:,.0f} | {m['errors']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
            f"{m['late_p99_ms']:.1f} | {m['cores']:.3f} |"
        )
    lines.append("")
    for target in ("tidegauge", FROZEN):
        m = figures[("fleet", target)]
        lines.append(
            f"Goals, `{target}`: < 0.25 core: {_verdict(m['cores'] < 0.25)} ({m['cores']:.3f}); p99 < 10 ms: "
            f"{_verdict(m['p99_ms'] < 10)} ({m['p99_ms']:.1f} ms)."
        )
    lines += [
        "",
        f"Read with the CPU per request above: at {large['cpu_ms_per_request']:.3f} ms (30,000 series) "
        f"{rate:,.0f} requests/s need {large['cpu_ms_per_request'] * rate / 1000:.2f} of a core, the "
        f"baseline {figures[(SIZES[1][1], 'baseline')]['cpu_ms_per_request'] * rate / 1000:.2f}. The "
        f"1-minute load average was {fleet['load']:.1f} on 2 cores during the fleet run: where the "
        "server's thread is given less CPU than it needs, requests queue and the p99 grows without bound "
        "(requests/s done below the rate says so); the same pacing against the baseline shows what the "
        "client and the machine alone cost.",
        "",
        f"**Refresh** of a view of {REFRESH_QUEUES:,} queues ({REFRESH_QUEUES * len(STATES):,} series) "
        "in this process on the same Redis: after K queues changed (one collector write of 3K series), "
        "the change feed's delta (or, when more than half the series changed, a whole read in steps); "
        "then the whole-metric read the server did before the feed (HGETALL, "
        "parse, render: the baseline) and the feed's full read (HSCAN steps; at start or after a gap). "
        "The last two re-read values already decoded once (the store caches decoded records), while the "
        "'after K' rows decode and render the 3K new records too, as any reader of new values must. "
        "Longest block: the largest gap a task ticking every 1 ms saw beyond its 1 ms, in wall time (which "
        "includes the time the OS gave the thread's core to other processes) and in the thread's own CPU "
        "time between two ticks (the work that held the loop). Each is measured three times in this run: "
        "`before`, the cyclic garbage collector as CPython sets it; `frozen`, with "
        "`tidegauge.server.heap` enabled as `tidegauge serve` runs (a large read freezes the series it "
        "keeps, `gc.freeze()`, so full passes skip them); `GC off`, `gc.disable()`: where `before` is "
        "much larger than `GC off`, the long block was a full collection pass over the objects held, "
        "not the refresh's own steps. Ratio: CPU to the whole HGETALL's, both `before`.",
        "",
        "| refresh | series read | CPU ms, before | CPU ms, frozen | ratio CPU to whole read | "
        "longest block CPU ms, before | frozen | GC off | longest block wall ms, before | frozen |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    whole = refresh["whole HGETALL"]
    for name, m in refresh.items():
        lines.append(
            f"| {name} | {m['fields']:,.0f} | {m['cpu_ms']:.1f} | {m['frozen_cpu_ms']:.1f} | "
            f"{m['cpu_ms'] / whole['cpu_ms']:.3f} | {m['max_block_cpu_ms']:.1f} | "
            f"{m['frozen_max_block_cpu_ms']:.1f} | {m['max_block_cpu_no_gc_ms']:.1f} | "
            f"{m['max_block_ms']:.1f} | {m['frozen_max_block_ms']:.1f} |"
        )
    full = refresh["full HSCAN"]
    lines += [
        "",
        "Memory with the series frozen: the permanent generation held "
        f"{full['frozen_frozen_first']:,.0f} objects after the first full HSCAN read and "
        f"{full['frozen_frozen_last']:,.0f} after the last ({refresh_repeats} reads, each building a "
        f"new index of {REFRESH_QUEUES * len(STATES):,} series and dropping the old one); Python's "
        "allocated memory "
        f"blocks went from {full['frozen_blocks_first']:,.0f} to {full['frozen_blocks_last']:,.0f}. Frozen "
        "objects are still freed by reference counting when the replaced index lets go of them (its "
        "series hold no reference cycles); only cyclic garbage would stay frozen, and "
        "`tidegauge.server.heap` runs one full collection once allocated blocks grew by a quarter.",
    ]
    return "\n".join(lines)


def _selective_goals(figures: dict[tuple[str, str], dict[str, float]], target: str) -> str:
    small, large = figures[(SIZES[0][1], target)], figures[(SIZES[1][1], target)]
    ratio_small = small["rps"] / figures[(SIZES[0][1], "baseline")]["rps"]
    ratio_large = large["rps"] / figures[(SIZES[1][1], "baseline")]["rps"]
    growth = large["cpu_ms_per_request"] / small["cpu_ms_per_request"]
    return (
        f"ratio ≥ 0.7 at 3,000 series: {_verdict(ratio_small >= 0.7)} ({ratio_small:.2f}); "
        f"≥ 0.5 at 30,000: {_verdict(ratio_large >= 0.5)} ({ratio_large:.2f}); p99 < 5 ms: "
        f"{_verdict(max(small['p99_ms'], large['p99_ms']) < 5)} ({small['p99_ms']:.1f} / "
        f"{large['p99_ms']:.1f} ms); CPU per request within 2x from 3,000 to 30,000: "
        f"{_verdict(growth <= 2)} (x{growth:.2f})."
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# --- the load generator (runs in its own process) ----------------------------------------------------


async def _generate(
    port: int,
    path: str,
    tls: tuple[str, str, str],
    seconds: float,
    connections: int,
    queues: int,
    rate: float,
) -> dict[str, float]:
    """Closed loop (``rate`` 0: each connection asks again at once) or paced open loop at ``rate``/s."""
    import aiohttp

    ca, cert, key = tls
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    headers = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
    base = f"https://127.0.0.1:{port}{path}?labelSelector=queue%3Dq"
    latencies: list[float] = []
    lateness: list[float] = []
    errors = 0
    counter = 0

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=connections), headers=headers
    ) as session:

        async def one(scheduled: float | None, record: bool) -> None:
            nonlocal counter, errors
            counter += 1
            started = time.perf_counter()
            async with session.get(f"{base}{(counter * 7919) % queues:05d}") as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            if record:
                latencies.append(time.perf_counter() - started)
                if scheduled is not None:
                    lateness.append(started - scheduled)

        async def closed(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                await one(None, record)

        first = time.perf_counter()
        warmup = first + min(0.5, seconds / 4)
        await asyncio.gather(*(closed(warmup, False) for _ in range(connections)))
        started = time.perf_counter()
        if rate <= 0:
            await asyncio.gather(*(closed(started + seconds, True) for _ in range(connections)))
        else:
            pending: list[asyncio.Task[None]] = []
            total = int(seconds * rate)
            for n in range(total):
                scheduled = started + n / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.append(asyncio.ensure_future(one(scheduled, True)))
            await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
    latencies.sort()
    lateness.sort()
    return {
        "late_p99_ms": lateness[int(len(lateness) * 0.99)] * 1000 if lateness else 0.0,
        "rps": len(latencies) / elapsed,
        "requests_total": float(counter),
        "wall_seconds": time.perf_counter() - first,
        "errors": float(errors),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--load", nargs=9, metavar=("PORT", "PATH", "CA", "CERT", "KEY", "S", "C", "Q", "RATE")
    )
    args = parser.parse_args()
    port, path, ca, cert, key, seconds, connections, queues, rate = args.load
    figures = asyncio.run(
        _generate(
            int(port),
            path,
            (ca, cert, key),
            float(seconds),
            int(float(connections)),
            int(float(queues)),
            float(rate),
        )
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
