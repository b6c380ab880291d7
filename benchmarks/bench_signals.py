"""Serve-time cost of windows and derived metrics at 1,000 series, against a plain metric in the same run.

In process, on real Redis: each figure is the time of one ``get_external_metric`` call of the signals
layer (what a request costs the event loop before its body is joined), with the provider's snapshot
cache off (every call reads the metric, as a cache miss does). ``cold`` also reads every series'
history (as after a collector run changed every series); ``warm`` finds them cached (nothing changed).
"""

from __future__ import annotations

import asyncio
import statistics
import time

TITLE = "Signals: windows and derived metrics at 1,000 series (serve-time cost)"
SERIES = 1_000
POINTS = 20
INTERVAL_SECONDS = 15.0

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
defaults: {max_age_seconds: 86400}
sampling: {interval_seconds: 15}
sources:
  - {name: plain, type: sqs, region: eu-west-1, queues: {names: [q]}, metric: bench_messages}
  - {name: smooth, type: sqs, region: eu-west-1, queues: {names: [q]}, metric: bench_smoothed}
  - {name: cpu, type: sqs, region: eu-west-1, queues: {names: [q]}, metric: bench_cpu}
metrics:
  bench_smoothed:
    window: {seconds: 300, function: ewma}
derived:
  bench_pressure: 'max(bench_messages / 100, bench_cpu / 70)'
  bench_projection: 'project(bench_messages[5m], 60s)'
"""

TARGETS = (
    # label, metric, every series changed before each call, first request (no signals caches)
    ("plain metric (baseline)", "bench_messages", False, False),
    ("window ewma 300 s", "bench_smoothed", False, False),
    ("derived max(sum / 100, cpu / 70)", "bench_pressure", False, False),
    ("derived project(m[5m], 60s)", "bench_projection", False, False),
    ("plain metric (baseline), every series changed", "bench_messages", True, False),
    ("window ewma 300 s, every series changed (new entries read)", "bench_smoothed", True, False),
    ("derived project(m[5m], 60s), every series changed", "bench_projection", True, False),
    ("window ewma 300 s, first request (whole histories read)", "bench_smoothed", False, True),
    ("derived project(m[5m], 60s), first request (whole histories read)", "bench_projection", False, True),
)


class _Writer:
    """Writes one new sample to every series of the two 1,000-series metrics (outside the timing)."""

    def __init__(self, url: str, now: float) -> None:
        from tidegauge.redis_connection import ConnectionSettings
        from tidegauge.store import Store

        self.store = Store.connect(ConnectionSettings(url))
        self.at = now
        self.step = POINTS

    def clock(self) -> float:
        """The run's time: that of the newest sample written, so windows hold the seeded history
        however long the run takes."""
        return self.at

    def write(self) -> None:
        from tidegauge.model import Sample

        self.at += 0.01
        self.step += 1
        for metric in ("bench_messages", "bench_smoothed"):
            self.store.write(
                Sample.of(metric, {"queue": f"q{index:04d}"}, (index + self.step) % 50, self.at)
                for index in range(SERIES)
            )
        self.store.write([Sample.of("bench_cpu", {"cluster": "db"}, 40, self.at)])


def _seed(url: str, now: float) -> None:
    from tidegauge.model import Sample
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.store import Store

    store = Store.connect(ConnectionSettings(url))
    try:
        for step in range(POINTS):
            at = now - INTERVAL_SECONDS * (POINTS - 1 - step)
            for metric in ("bench_messages", "bench_smoothed"):
                store.write(
                    Sample.of(metric, {"queue": f"q{index:04d}"}, (index + step) % 50, at)
                    for index in range(SERIES)
                )
            store.write([Sample.of("bench_cpu", {"cluster": "db"}, 40 + step, at)])
    finally:
        store.close()


async def _measure(url: str, writer: _Writer, calls: int, rounds: int) -> dict[str, float]:
    from tidegauge.async_store import AsyncStore
    from tidegauge.config import parse_config
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.selectors import Selector
    from tidegauge.server.histories import SeriesHistories
    from tidegauge.server.provider import ExternalMetricsProvider
    from tidegauge.server.signals import SignalsProvider

    config = parse_config(CONFIG, "<bench>", redis_url=url, environ={})
    store = AsyncStore.connect(ConnectionSettings(url), cluster=False)
    try:
        medians: dict[str, float] = {}
        for label, metric, changed, first in TARGETS:
            provider = ExternalMetricsProvider(store, config, snapshot_seconds=0.0, clock=writer.clock)

            def layer(provider: ExternalMetricsProvider = provider) -> SignalsProvider:
                histories = SeriesHistories(store)
                return SignalsProvider(
                    provider, histories, config, interval_seconds=INTERVAL_SECONDS, clock=writer.clock
                )

            signals = layer()
            values = await signals.get_external_metric("bench", Selector(), metric)  # warms caches
            assert values, metric
            per_round: list[float] = []
            for _ in range(rounds):
                spent = 0.0
                for _ in range(calls):
                    if changed:
                        writer.write()
                    if first:
                        signals = layer()
                    started = time.perf_counter()
                    await signals.get_external_metric("bench", Selector(), metric)
                    spent += time.perf_counter() - started
                per_round.append(spent / calls)
            medians[label] = statistics.median(per_round)
        return medians
    finally:
        await store.close()


def run(quick: bool) -> str:
    from tidegauge.localredis import RedisServer

    calls, rounds = (5, 3) if quick else (10, 5)
    with RedisServer() as redis:
        now = time.time()
        _seed(redis.url, now)
        writer = _Writer(redis.url, now)
        try:
            medians = asyncio.run(_measure(redis.url, writer, calls, rounds))
        finally:
            writer.store.close()
    unchanged, changed = medians[TARGETS[0][0]], medians[TARGETS[4][0]]
    lines = [
        f"{SERIES:,} series of `bench_messages` with {POINTS} history points each ({INTERVAL_SECONDS:g} s "
        f"apart), real Redis on loopback, one process; median over {rounds} rounds of the mean of {calls} "
        "sequential calls. Provider snapshot cache off (each call is a cache miss: one HGETALL of the "
        "metric). `every series changed`: a new sample was written to every series before each call (outside "
        "the timing), as after a collector run. Ratio = time ÷ the plain metric's time in the same state "
        "(unchanged, or every series changed), measured in the same run. Windows and projections read "
        "histories only for a series whose latest timestamp changed, and then only the new entries; "
        "`first request`: a signals layer with empty caches (a new server, or once an hour per series) reads "
        "each series' whole history (up to 48 points for a 300 s window at a 15 s interval; 20 exist).",
        "",
        "| target | ms per call | ratio |",
        "| --- | ---: | ---: |",
    ]
    for label, _, every_changed, _ in TARGETS:
        baseline = changed if every_changed else unchanged
        lines.append(f"| {label} | {medians[label] * 1000:.2f} | {medians[label] / baseline:.2f} |")
    return "\n".join(lines)
