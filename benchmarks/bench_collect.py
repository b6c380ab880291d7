"""Collectors: 1,000 SQS queues and 2,000 CloudWatch queries against a moto server over HTTP.

Checks that one collection makes the minimum number of AWS calls (one GetQueueAttributes per queue,
ceil(2000/500) = 4 GetMetricData calls), counted by botocore ``before-call`` hooks independent of the
collector's own counter, and measures wall time per collection against a naive collector in the same
run (sequential calls, one GetMetricData per query, one Redis write per queue or query). Peak memory
is measured in a separate process (so the in-process moto server is not counted), and each handler's
cold import with ``python -X importtime`` with only the function directory and ``shared/`` added to
the path, as in Lambda with the layer.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TITLE = "Collectors: 1,000 SQS queues and 2,000 CloudWatch queries (moto server over HTTP)"
REGION = "eu-west-1"
QUEUES = 1_000
QUERIES = 2_000
MAX_WORKERS = 16
LOOKBACK_SECONDS = 180
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
}


def config_mapping(redis_url: str) -> dict[str, Any]:
    return {
        "version": 1,
        "redis": {"url": redis_url, "history_length": 10},
        "sampling": {"max_workers": MAX_WORKERS},
        "sources": [
            {"name": "bench-queues", "type": "sqs", "region": REGION, "queues": {"prefixes": ["bench-"]}},
            {
                "name": "bench-metrics",
                "type": "cloudwatch",
                "region": REGION,
                "lookback_seconds": LOOKBACK_SECONDS,
                "queries": [
                    {
                        "metric": "bench_load",
                        "labels": {"id": str(index)},
                        "namespace": "Bench",
                        "metric_name": "Load",
                        "stat": "Average",
                        "dimensions": {"Id": str(index)},
                    }
                    for index in range(QUERIES)
                ],
            },
        ],
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _populate(endpoint: str) -> None:
    """1,000 queues (every tenth with messages) and one datapoint for each of 2,000 metrics."""
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=MAX_WORKERS)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint, config=config)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    from concurrent.futures import ThreadPoolExecutor

    def create(index: int) -> None:
        url = sqs.create_queue(QueueName=f"bench-{index:04d}")["QueueUrl"]
        if index % 10 == 0:
            sqs.send_message(QueueUrl=url, MessageBody="x")

    with ThreadPoolExecutor(MAX_WORKERS) as pool:
        list(pool.map(create, range(QUEUES)))
    put_datapoints(cloudwatch, QUERIES, seconds_back=30)


def put_datapoints(cloudwatch: Any, count: int, *, seconds_back: float) -> None:
    """One datapoint of metric Bench/Load for each Id 0..count-1, ``seconds_back`` before this minute."""
    stamp = datetime.datetime.fromtimestamp(math.floor(time.time() / 60) * 60 - seconds_back, tz=datetime.UTC)
    for first in range(0, count, 1000):
        cloudwatch.put_metric_data(
            Namespace="Bench",
            MetricData=[
                {
                    "MetricName": "Load",
                    "Dimensions": [{"Name": "Id", "Value": str(i)}],
                    "Value": i,
                    "Timestamp": stamp,
                }
                for i in range(first, min(first + 1000, count))
            ],
        )


class _Calls:
    """API calls by operation, from ``before-call`` hooks on the given clients (independent counting)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    def take(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts


def _timed(function: Callable[[], Any], repetitions: int) -> tuple[list[tuple[float, float]], Any]:
    """(wall seconds, CPU seconds of this process) of each repetition, and the last result."""
    durations: list[tuple[float, float]] = []
    result: Any = None
    for _ in range(repetitions):
        started, cpu = time.perf_counter(), time.process_time()
        result = function()
        durations.append((time.perf_counter() - started, time.process_time() - cpu))
    return durations, result


def _medians(durations: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(d[0] for d in durations), statistics.median(d[1] for d in durations)


def _naive_sqs(client: Any, urls: list[str], store: Any, source: Any) -> None:
    from tidegauge.sources.sqs import Queue, queue_samples, read_queue

    for url in urls:
        reading = read_queue(client, Queue.from_url(url))
        store.write(queue_samples(reading, source, collected_at=time.time()))


def _naive_cloudwatch(client: Any, source: Any, store: Any) -> None:
    from tidegauge.sources.cloudwatch import evaluate, fetch, plan_calls, plan_queries

    for planned in plan_queries([(source, query) for query in source.queries]):
        now = time.time()
        (call,) = plan_calls([planned], now)
        results, _ = fetch(client, call)
        outcome = evaluate(
            planned, results.get(planned.query_id), now=now, account="123456789012", collected_at=now
        )
        if outcome.sample is not None:
            store.write([outcome.sample])


def _child(endpoint: str, redis_url: str) -> None:
    """Run in a fresh process: one warm-up and one measured collection; print peak memory as JSON."""
    import resource
    import tracemalloc

    from tidegauge.config import Config
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.sources.aws import ClientFactory
    from tidegauge.sources.collector import Collector
    from tidegauge.store import Store

    config = Config.from_mapping(config_mapping(redis_url))
    store = Store.connect(ConnectionSettings(redis_url), history_length=10)
    collector = Collector(ClientFactory(endpoint_url=endpoint))
    collector.collect(store, config, config.sources, remaining_time_ms=lambda: 0, force=True)
    tracemalloc.start()
    collector.collect(store, config, config.sources, remaining_time_ms=lambda: 0, force=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"tracemalloc_peak": peak, "maxrss_kib": maxrss_kib}))


def _memory(endpoint: str, redis_url: str) -> dict[str, float]:
    code = f"from benchmarks.bench_collect import _child; _child({endpoint!r}, {redis_url!r})"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **AWS_ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    data: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return data


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")
IMPORT_PARTS = ("boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk", "redis", "yaml", "tidegauge")


FLOOR_IMPORTS = "import boto3, redis, yaml, aws_lambda_powertools.logging, aws_lambda_powertools.metrics"
"""The third-party modules any collector handler needs (the floor the handler's import is compared to)."""
_TIMED = (
    "import json, time; began, cpu = time.perf_counter(), time.process_time(); {statement}; "
    "print(json.dumps([time.perf_counter() - began, time.process_time() - cpu]))"
)


def _handler_environment(function: str, tracing: bool) -> dict[str, str]:
    """Lambda's environment for ``function`` (the layer on the path), tracing on or off as the template."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "POWERTOOLS_"))},
        **AWS_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "shared")]),
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "tidegauge",
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "AWS_LAMBDA_FUNCTION_NAME": function,
    }


def _python(function: str, tracing: bool, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT / "functions" / function,
        env=_handler_environment(function, tracing),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _import_timer(repetitions: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of ``import app`` timed inside fresh interpreters, tracing off and on,
    and of the third-party floor; the cases interleaved so load on the machine hits them alike."""
    cases = {
        f"{function}, tracing {'on' if tracing else 'off'}": (function, tracing, "import app")
        for function in ("collect_sqs", "collect_cloudwatch")
        for tracing in (False, True)
    }
    cases["third-party floor"] = ("collect_sqs", False, FLOOR_IMPORTS)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repetitions):
        for name, (function, tracing, statement) in cases.items():
            completed = _python(function, tracing, "-c", _TIMED.format(statement=statement))
            wall, cpu = json.loads(completed.stdout.strip().splitlines()[-1])
            samples[name].append((wall, cpu))
    return {name: _medians(values) for name, values in samples.items()}


def _import_times(function: str, repetitions: int) -> dict[str, float]:
    """Median µs of ``import app`` (cumulative) and of each big package's modules (their own time)."""
    samples: dict[str, list[float]] = {part: [] for part in ("app", *IMPORT_PARTS)}
    for _ in range(repetitions):
        completed = _python(function, False, "-X", "importtime", "-c", "import app")
        totals = dict.fromkeys(IMPORT_PARTS, 0.0)
        for match in _IMPORT_LINE.finditer(completed.stderr):
            name = match.group(3)
            if name == "app":
                samples["app"].append(float(match.group(2)))
            package = name.partition(".")[0]
            if package in totals:
                totals[package] += float(match.group(1))
        for package, total in totals.items():
            samples[package].append(total)
    return {name: statistics.median(values) for name, values in samples.items() if values}


def _serve_moto() -> None:
    """Child process: a ThreadedMotoServer on a free 127.0.0.1 port until stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


@contextlib.contextmanager
def _moto_process() -> Iterator[str]:
    """The moto server in its own process, so it does not share the measured process's GIL."""
    code = "from benchmarks.bench_collect import _serve_moto; _serve_moto()"
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run(quick: bool) -> str:
    from tidegauge.config import Config, SqsSource
    from tidegauge.localredis import RedisServer
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.sources.aws import ClientFactory
    from tidegauge.sources.collector import Collector
    from tidegauge.sources.sqs import list_queue_urls
    from tidegauge.store import Store

    repetitions = 3 if quick else 5
    with _moto_process() as endpoint, _environment(AWS_ENVIRONMENT), RedisServer() as redis_server:
        started = time.perf_counter()
        _populate(endpoint)
        setup_seconds = time.perf_counter() - started
        config = Config.from_mapping(config_mapping(redis_server.url))
        sqs_source, cloudwatch_source = config.sources
        assert isinstance(sqs_source, SqsSource)
        store = Store.connect(ConnectionSettings(redis_server.url), history_length=10)
        factory = ClientFactory(endpoint_url=endpoint)
        collector = Collector(factory)
        calls = _Calls()

        def collect(sources: Any) -> Any:
            return collector.collect(store, config, sources, remaining_time_ms=lambda: 0, force=True)

        cold = _timed(lambda: collect(config.sources), 1)
        calls.watch(factory.client("sqs", REGION))
        calls.watch(factory.client("cloudwatch", REGION))
        calls.watch(factory.client("sts", REGION))
        cold_calls = factory.counter.snapshot().totals

        sqs_times, sqs_result = _timed(lambda: collect([sqs_source]), repetitions)
        sqs_calls = calls.take()
        cloudwatch_times, cloudwatch_result = _timed(lambda: collect([cloudwatch_source]), repetitions)
        cloudwatch_calls = calls.take()
        per_sqs = {name: count / repetitions for name, count in sqs_calls.items()}
        per_cloudwatch = {name: count / repetitions for name, count in cloudwatch_calls.items()}
        minimum_sqs = {"GetQueueAttributes": float(QUEUES)}
        minimum_cloudwatch = {"GetMetricData": float(math.ceil(QUERIES / 500))}
        assert per_sqs == minimum_sqs, f"SQS calls per collection {per_sqs} != minimum {minimum_sqs}"
        assert per_cloudwatch == minimum_cloudwatch, (
            f"CloudWatch calls per collection {per_cloudwatch} != minimum {minimum_cloudwatch}"
        )
        assert sqs_result.samples_written == 3 * QUEUES, sqs_result.summary()
        assert cloudwatch_result.samples_written + cloudwatch_result.statuses[0].series_no_data == QUERIES

        naive_client_sqs = factory.client("sqs", REGION)
        urls = list_queue_urls(naive_client_sqs, "bench-")
        calls.take()
        naive_repetitions = 1 if quick else 3
        naive_sqs_times, _ = _timed(
            lambda: _naive_sqs(naive_client_sqs, urls, store, sqs_source), naive_repetitions
        )
        naive_sqs_calls = calls.take()
        naive_cw_client = factory.client("cloudwatch", REGION)
        naive_cw_times, _ = _timed(
            lambda: _naive_cloudwatch(naive_cw_client, cloudwatch_source, store), naive_repetitions
        )
        naive_cw_calls = calls.take()
        memory = _memory(endpoint, redis_server.url)
        store.close()
    imports = {function: _import_times(function, 5) for function in ("collect_sqs", "collect_cloudwatch")}
    timer = _import_timer(5 if quick else 9)
    return _report(
        quick=quick,
        repetitions=repetitions,
        setup_seconds=setup_seconds,
        cold_seconds=cold[0][0][0],
        cold_calls=cold_calls,
        sqs=(_medians(sqs_times), per_sqs),
        cloudwatch=(_medians(cloudwatch_times), per_cloudwatch),
        naive_sqs=(_medians(naive_sqs_times), {k: v / naive_repetitions for k, v in naive_sqs_calls.items()}),
        naive_cloudwatch=(
            _medians(naive_cw_times),
            {k: v / naive_repetitions for k, v in naive_cw_calls.items()},
        ),
        naive_repetitions=naive_repetitions,
        memory=memory,
        imports=imports,
        timer=timer,
        timer_repetitions=5 if quick else 9,
    )


def _row(
    name: str,
    measured: tuple[tuple[float, float], dict[str, float]],
    naive: tuple[tuple[float, float], dict[str, float]],
    minimum: str,
) -> str:
    (wall, cpu), calls = measured
    (naive_wall, naive_cpu), _ = naive
    return (
        f"| {name} | {_calls_text(calls)} | {minimum} | {wall:.2f} s | {wall / naive_wall:.2f} | "
        f"{cpu:.2f} s | {cpu / naive_cpu:.2f} |"
    )


def _per(calls: dict[str, int], repetitions: int) -> dict[str, float]:
    return {name: count / repetitions for name, count in calls.items()}


def _calls_text(calls: dict[str, float]) -> str:
    return ", ".join(f"{name} {count:,.0f}" for name, count in sorted(calls.items()))


def _report(
    *,
    quick: bool,
    repetitions: int,
    setup_seconds: float,
    cold_seconds: float,
    cold_calls: dict[str, int] | Any,
    sqs: tuple[tuple[float, float], dict[str, float]],
    cloudwatch: tuple[tuple[float, float], dict[str, float]],
    naive_sqs: tuple[tuple[float, float], dict[str, float]],
    naive_cloudwatch: tuple[tuple[float, float], dict[str, float]],
    naive_repetitions: int,
    memory: dict[str, float],
    imports: dict[str, dict[str, float]],
    timer: dict[str, tuple[float, float]],
    timer_repetitions: int,
) -> str:
    header = "| handler | import app | " + " | ".join(IMPORT_PARTS) + " |"
    lines = [
        f"{QUEUES:,} queues (every tenth holding a message) and {QUERIES:,} metric-stat queries on a moto "
        f"server (127.0.0.1, HTTP, its own process), real Redis; {MAX_WORKERS} workers; setup took "
        f"{setup_seconds:.0f} s. Calls are counted by botocore `before-call` hooks (retries are not calls). "
        "One collection = one round of every queue or every query, written to Redis. Median of "
        f"{repetitions} collections (naive: {naive_repetitions}). Ratios are to the naive collector; "
        "collector CPU is the CPU time of the collecting process (all its threads), which is what Lambda "
        "bills once AWS answers quickly.",
        "",
        "| collection | AWS calls per collection | minimum | wall time | ratio | collector CPU | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        _row("SQS, tidegauge (warm)", sqs, naive_sqs, f"GetQueueAttributes {QUEUES:,}"),
        _row("SQS, naive (sequential, a write per queue)", naive_sqs, naive_sqs, ""),
        _row(
            "CloudWatch, tidegauge", cloudwatch, naive_cloudwatch, f"GetMetricData {math.ceil(QUERIES / 500)}"
        ),
        _row("CloudWatch, naive (a call and a write per query)", naive_cloudwatch, naive_cloudwatch, ""),
        "",
        "**Minimum calls: met** (asserted). The first (cold) collection of both sources took "
        f"{cold_seconds:.2f} s and made {_calls_text(dict(cold_calls))}: discovery (one paginated "
        "ListQueues) and the account lookup are cached for the following collections. CloudWatch bills "
        f"{QUERIES:,} metrics per collection either way; the naive collector needs {QUERIES:,} requests.",
        "",
        f"Compute: a warm SQS round costs {sqs[0][1] / QUEUES * 1000:.1f} ms of CPU per queue, almost all of "
        f"it botocore's own per-call work (signing, HTTP, parsing); {QUEUES:,} queues take "
        f"{sqs[0][1]:.1f} CPU-seconds per round. Lambda allots one vCPU at 1,769 MB and proportionally less "
        "below, so a function sampling this many queues every 15 s needs about 1 GB or more; CloudWatch "
        f"costs {cloudwatch[0][1]:.2f} CPU-seconds for {QUERIES:,} queries (batching removes the per-call "
        "work).",
        "",
        "Peak memory of one warm collection of both sources (separate process): tracemalloc peak "
        f"{memory['tracemalloc_peak'] / 2**20:.1f} MiB, process max RSS "
        f"{memory['maxrss_kib'] / 1024:.0f} MiB (interpreter, boto3 and both clients included).",
        "",
        *_import_timer_lines(timer, timer_repetitions),
        "",
        "Where the time goes (tracing off), `python -X importtime -c 'import app'` with only the function "
        "directory and `shared/` on PYTHONPATH (the layer), median of 5. `import app` is cumulative; the "
        "package columns sum the import time of each package's own modules (ms):",
        "",
        header,
        "| --- | ---: | " + " | ".join("---:" for _ in IMPORT_PARTS) + " |",
    ]
    for function, parts in imports.items():
        cells = [f"{parts[name] / 1000:.0f}" if name in parts else "n/a" for name in ("app", *IMPORT_PARTS)]
        lines.append(f"| {function} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Wall times measure moto's own implementation as much as the collector (moto answers one request "
        "at a time per CPU, and evaluates every GetMetricData query against every stored datapoint), so "
        "they say little about AWS latency; the call counts are what matters for cost. "
        + ("(quick run)" if quick else ""),
    ]
    return "\n".join(lines)


def _import_timer_lines(timer: dict[str, tuple[float, float]], repetitions: int) -> list[str]:
    off = timer["collect_sqs, tracing off"]
    on = timer["collect_sqs, tracing on"]
    floor = timer["third-party floor"]
    verdict = "met" if off[0] < 0.25 else "MISSED on this machine"
    lines = [
        "Handler cold import, timed inside a fresh interpreter (`import app`, wall and CPU), median of "
        f"{repetitions}, Lambda's environment with tracing off (the template's default, "
        "`CollectorTracing=PassThrough`) and on (`Active`: what every cold start paid before); the cases "
        f"interleaved. Floor: `{FLOOR_IMPORTS}` alone, in the same run.",
        "",
        "| handler | wall | CPU | ratio to tracing on (wall) | ratio to the floor (wall) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (wall, cpu) in timer.items():
        function = name.partition(",")[0]
        tracing_on = timer.get(f"{function}, tracing on", (wall, cpu))[0]
        lines.append(
            f"| {name} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {wall / tracing_on:.2f} | "
            f"{wall / floor[0]:.2f} |"
        )
    lines += [
        "",
        f"**Goal (< 250 ms): {verdict}** — collect_sqs {off[0] * 1000:.0f} ms with tracing off against "
        f"{on[0] * 1000:.0f} ms with it on (ratio {off[0] / on[0]:.2f}). The third-party floor alone takes "
        f"{floor[0] * 1000:.0f} ms here ({floor[1] * 1000:.0f} ms CPU) and the handler's own modules add "
        f"{(off[0] - floor[0]) * 1000:.0f} ms to it, so below the floor only fewer or lighter dependencies "
        "would go: `import redis` always imports `redis.asyncio` (and asyncio), boto3 brings s3transfer, "
        "the config needs PyYAML. Moving imports into the first invocation would only move the time, "
        "since a cold start runs both.",
    ]
    return lines
