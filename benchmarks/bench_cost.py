"""Collectors: what an invocation costs (CPU, peak memory, calls) and what a month of collection costs.

Each scenario runs in a fresh interpreter that imports the real handler module
(``functions/<function>/app.py`` with only it and ``shared/`` on the path, as in Lambda with the layer)
and calls ``lambda_handler`` against a moto server (its own process) and a real Redis: one cold
invocation, then warm ones (SQS: the tick chain's ticks, one round each; CloudWatch: the schedule).
Measured per warm invocation: CPU seconds of the whole process (all threads), wall seconds, AWS calls
(the handler's own count), Redis commands (``INFO commandstats``); per process: peak RSS
(``ru_maxrss``) and the tracemalloc peak of one invocation.

The monthly bill is computed from those counts and published prices (constants below, with their date).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_collect import (
    AWS_ENVIRONMENT,
    REGION,
    ROOT,
    _environment,
    _moto_process,
    put_datapoints,
)

TITLE = "Collectors: cost per invocation and per month (moto server, real handler, Redis)"
WARM_INVOCATIONS = 7

# --- Published list prices, us-east-1 (AWS pricing pages), cross-checked on 2026-12-02 against sources ---
# quoting them (the pricing pages themselves were not reachable from the benchmark machine).
LAMBDA_REQUEST_USD = 0.20 / 1e6
"""Lambda: per request."""
LAMBDA_ARM_GB_SECOND_USD = 0.0000133334
"""Lambda on arm64 (the template's architecture): per GB-second, first 7.5 billion GB-s a month."""
LAMBDA_FREE_REQUESTS = 1_000_000
LAMBDA_FREE_GB_SECONDS = 400_000
"""Lambda's always-free tier, per account and month (shared by every function of the account)."""
SQS_REQUEST_USD = 0.40 / 1e6
"""SQS standard queues: per request (each 64 KB chunk of a request), after the free tier."""
SQS_FREE_REQUESTS = 1_000_000
CLOUDWATCH_METRIC_REQUESTED_USD = 0.01 / 1000
"""CloudWatch GetMetricData: per metric requested (no free tier for GetMetricData)."""
VALKEY_SERVERLESS_GB_HOUR_USD = 0.084
VALKEY_SERVERLESS_MINIMUM_GB = 0.1
"""ElastiCache Serverless for Valkey: data stored per GB-hour, billed at 100 MB at least."""
VALKEY_ECPU_USD = 0.0023 / 1e6
"""ElastiCache Serverless for Valkey: per ECPU (about one per simple command of up to 1 KB)."""
# --- Lambda and SQS behaviour the bill depends on ------------------------------------------------------
FULL_VCPU_MB = 1769
"""Lambda allots CPU in proportion to memory: one vCPU at 1,769 MB."""
ESM_POLLERS = 5
ESM_LONG_POLL_SECONDS = 20
"""An SQS event source mapping long-polls with about five pollers when idle (20 s each): assumed, AWS
does not publish the count; it bills ReceiveMessage requests to the queue owner."""
AWS_CALL_SECONDS = 0.010
"""Assumed latency of one in-region AWS call (not measurable on moto); calls overlap over the workers."""
SCHEDULE_CHECK_SECONDS = 0.01
"""The minute schedule's invocation while the tick chain is alive: a marker read, no round (estimated)."""
MINUTES_PER_MONTH = 30.4375 * 24 * 60
MEMORY_SIZES = (128, 256, 512, 1024, 1769)


@dataclass(frozen=True)
class Scenario:
    name: str
    function: str
    queues: int = 0
    busy: bool = False
    queries: int = 0


SCENARIOS = (
    Scenario("SQS, 50 queues, idle", "collect_sqs", queues=50),
    Scenario("SQS, 50 queues, busy", "collect_sqs", queues=50, busy=True),
    Scenario("SQS, 1,000 queues, idle", "collect_sqs", queues=1000),
    Scenario("SQS, 1,000 queues, busy", "collect_sqs", queues=1000, busy=True),
    Scenario("CloudWatch, 50 queries", "collect_cloudwatch", queries=50),
)


def _config(scenario: Scenario, redis_url: str, prefix: str) -> str:
    sources: list[dict[str, Any]] = []
    if scenario.queues:
        sources.append(
            {"name": prefix, "type": "sqs", "region": REGION, "queues": {"prefixes": [f"{prefix}-"]}}
        )
    if scenario.queries:
        sources.append(
            {
                "name": prefix,
                "type": "cloudwatch",
                "region": REGION,
                "queries": [
                    {
                        "metric": "bench_load",
                        "labels": {"id": str(i)},
                        "namespace": "Bench",
                        "metric_name": "Load",
                        "stat": "Average",
                        "dimensions": {"Id": str(i)},
                    }
                    for i in range(scenario.queries)
                ],
            }
        )
    return json.dumps({"version": 1, "redis": {"url": redis_url, "history_length": 10}, "sources": sources})


def _populate(scenario: Scenario, endpoint: str, redis_url: str, prefix: str) -> dict[str, str]:
    """Queues (with three messages each when busy), datapoints, the SSM parameter; the child's env."""
    import boto3

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    environ = {
        "TIDEGAUGE_CONFIG_PARAMETER": f"/bench/{prefix}",
        "TIDEGAUGE_REDIS_URL": redis_url,
        "BENCH_SOURCE": prefix,
        "AWS_ENDPOINT_URL": endpoint,  # every client of the handler talks to the moto server only
    }

    def create(index: int) -> None:
        url = sqs.create_queue(QueueName=f"{prefix}-{index:04d}")["QueueUrl"]
        if scenario.busy:
            entries: list[Any] = [{"Id": str(i), "MessageBody": "work"} for i in range(3)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(scenario.queues)))
    if scenario.queues:
        environ["TIDEGAUGE_TICK_QUEUE_URL"] = sqs.create_queue(QueueName=f"ticks-{prefix}")["QueueUrl"]
    if scenario.queries:
        cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
        put_datapoints(cloudwatch, scenario.queries, seconds_back=90)
    boto3.client("ssm", region_name=REGION, endpoint_url=endpoint).put_parameter(
        Name=environ["TIDEGAUGE_CONFIG_PARAMETER"], Value=_config(scenario, redis_url, prefix), Type="String"
    )
    return environ


@dataclass
class _Context:
    function_name: str = "tidegauge-bench"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:tidegauge-bench"
    aws_request_id: str = "bench"
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.time()

    def get_remaining_time_in_millis(self) -> int:
        return int((self.started + 60 - time.time()) * 1000)


def _commands(client: Any) -> int:
    return sum(int(entry["calls"]) for entry in client.info("commandstats").values())


def _child(function: str, output: str) -> None:
    """In a fresh interpreter: import the handler, one cold and WARM_INVOCATIONS warm invocations."""
    import resource
    import tracemalloc

    started, cpu = time.perf_counter(), time.process_time()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        import app  # type: ignore[import-not-found]
    import redis

    sent: list[str] = []
    if os.environ.get("TIDEGAUGE_TICK_QUEUE_URL"):
        client = app.function.factory.client("sqs", None)
        client.meta.events.register(
            "provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(params["MessageBody"])
        )
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}

    def event() -> dict[str, Any]:
        if sent:
            return {"Records": [{"eventSource": "aws:sqs", "body": sent[-1]}]}
        if function == "collect_cloudwatch":
            # what the minute's invocation fetches: every query (forced, as its period turned)
            return {"detail-type": "tidegauge.collect", "detail": {"sources": [os.environ["BENCH_SOURCE"]]}}
        return scheduled

    def invoke() -> dict[str, Any]:
        with contextlib.redirect_stdout(sink):
            summary: dict[str, Any] = app.lambda_handler(event(), _Context())
        return summary

    invoke()
    cold = (time.perf_counter() - started, time.process_time() - cpu)
    counter = redis.Redis.from_url(os.environ["TIDEGAUGE_REDIS_URL"])
    warm: list[dict[str, Any]] = []
    for _ in range(WARM_INVOCATIONS):
        commands, began, cpu = _commands(counter), time.perf_counter(), time.process_time()
        summary = invoke()
        wall, used = time.perf_counter() - began, time.process_time() - cpu
        warm.append(
            {
                "wall": wall,
                "cpu": used,
                "calls": summary["api_calls"],
                "redis": _commands(counter) - commands - 1,  # less the INFO itself
                "samples": summary["samples_written"],
                "metrics": summary.get("metrics_requested", 0),
                "tick": summary.get("tick", {}).get("action"),
            }
        )
    tracemalloc.start()
    invoke()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    figures = {
        "cold_wall": cold[0],
        "cold_cpu": cold[1],
        "warm": warm,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "traced_peak_mib": traced_peak / 2**20,
        "emf_bytes_per_invocation": len(sink.getvalue().encode()) / (WARM_INVOCATIONS + 2),
    }
    Path(output).write_text(json.dumps(figures))


def _measure(scenario: Scenario, environ: dict[str, str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        output = handle.name
    code = f"from benchmarks.bench_cost import _child; _child({scenario.function!r}, {output!r})"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS_"))},
        **AWS_ENVIRONMENT,
        **environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "functions" / scenario.function), str(ROOT / "shared"), str(ROOT)]
        ),
        "POWERTOOLS_SERVICE_NAME": scenario.function,
        "POWERTOOLS_METRICS_NAMESPACE": "tidegauge",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / scenario.function),
        "AWS_LAMBDA_FUNCTION_NAME": "tidegauge-bench",
    }
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / scenario.function,
        env=env,
        timeout=900,
        check=True,
    )
    figures: dict[str, Any] = json.loads(Path(output).read_text())
    os.unlink(output)
    return figures


@contextlib.contextmanager
def _services() -> Iterator[tuple[str, str]]:
    from tidegauge.localredis import RedisServer

    with _moto_process() as endpoint, _environment(AWS_ENVIRONMENT), RedisServer() as redis_server:
        yield endpoint, redis_server.url


def run(quick: bool) -> str:
    scenarios = SCENARIOS[:2] + SCENARIOS[4:] if quick else SCENARIOS
    results: dict[str, dict[str, Any]] = {}
    with _services() as (endpoint, redis_url):
        for index, scenario in enumerate(scenarios):
            environ = _populate(scenario, endpoint, redis_url, f"c{index}")
            results[scenario.name] = _measure(scenario, environ)
    return _report(scenarios, results, quick)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _warm(figures: dict[str, Any], key: str) -> float:
    return _median([float(w[key]) for w in figures["warm"]])


def _calls(figures: dict[str, Any]) -> dict[str, float]:
    names = {name for w in figures["warm"] for name in w["calls"]}
    return {
        name: _median([float(w["calls"].get(name, 0)) for w in figures["warm"]]) for name in sorted(names)
    }


def billed_seconds(cpu_seconds: float, calls: float, memory_mb: int, workers: int = 16) -> float:
    """One invocation's duration at ``memory_mb``: its CPU at that share of a vCPU, plus the AWS calls'
    own latency over the workers (:data:`AWS_CALL_SECONDS`, assumed)."""
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    return cpu_seconds / share + math.ceil(calls / workers) * AWS_CALL_SECONDS


def gb_seconds(cpu_seconds: float, calls: float, memory_mb: int) -> float:
    return billed_seconds(cpu_seconds, calls, memory_mb) * memory_mb / 1024


def pick_memory(figures: dict[str, Any], *, round_within: float = 2.0, cold_within: float = 5.0) -> int:
    """The smallest size that holds the process with a quarter spare, ends a round well inside 15 s and
    a cold start (import and first invocation) within ``cold_within`` seconds."""
    cpu, calls = _warm(figures, "cpu"), float(sum(_calls(figures).values()))
    for size in MEMORY_SIZES:
        share = min(1.0, size / FULL_VCPU_MB)
        if (
            figures["maxrss_mib"] <= 0.75 * size
            and billed_seconds(cpu, calls, size) <= round_within
            and figures["cold_cpu"] / share <= cold_within
        ):
            return size
    return MEMORY_SIZES[-1]


@dataclass(frozen=True)
class Bill:
    """One month of one design, in USD: list prices (no free tier) by line."""

    lambda_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    sqs_requests: float = 0.0
    metrics_requested: float = 0.0
    redis: float = 0.0

    @property
    def total(self) -> float:
        return (
            self.lambda_requests
            + self.lambda_gb_seconds
            + self.sqs_requests
            + self.metrics_requested
            + self.redis
        )

    def after_free_tier(self, requests: float, gb_s: float, sqs: float) -> float:
        """The same month if the account spends the always-free tiers on nothing else."""
        lambda_requests = max(0.0, requests - LAMBDA_FREE_REQUESTS) * LAMBDA_REQUEST_USD
        lambda_gb_s = max(0.0, gb_s - LAMBDA_FREE_GB_SECONDS) * LAMBDA_ARM_GB_SECOND_USD
        sqs_usd = max(0.0, sqs - SQS_FREE_REQUESTS) * SQS_REQUEST_USD
        return lambda_requests + lambda_gb_s + sqs_usd + self.metrics_requested + self.redis


@dataclass(frozen=True)
class Usage:
    """One month's counts: Lambda requests and GB-s, SQS requests, CloudWatch metrics requested, ECPUs."""

    requests: float = 0.0
    gb_s: float = 0.0
    sqs: float = 0.0
    metrics: float = 0.0
    ecpus: float = 0.0
    redis: bool = False

    def bill(self) -> Bill:
        storage = VALKEY_SERVERLESS_GB_HOUR_USD * VALKEY_SERVERLESS_MINIMUM_GB * MINUTES_PER_MONTH / 60
        return Bill(
            lambda_requests=self.requests * LAMBDA_REQUEST_USD,
            lambda_gb_seconds=self.gb_s * LAMBDA_ARM_GB_SECOND_USD,
            sqs_requests=self.sqs * SQS_REQUEST_USD,
            metrics_requested=self.metrics * CLOUDWATCH_METRIC_REQUESTED_USD,
            redis=(storage + self.ecpus * VALKEY_ECPU_USD) if self.redis else 0.0,
        )


def tidegauge_usage(
    sqs: dict[str, Any],
    cloudwatch: dict[str, Any],
    memory_mb: int,
    *,
    rounds_design: bool = False,
    idle: bool = False,
) -> Usage:
    """A month of collecting 50 queues every 15 s and 50 metrics every minute, whatever reads them.

    Tick design: 4 ticks a minute for SQS (each one round) and the schedule's check, one CloudWatch
    invocation a minute; the mapping's idle polls. Rounds design: one SQS invocation a minute, billed 45 s of
    waiting plus its four rounds when busy, one round when ``idle`` (quiet).
    """
    sqs_cpu, cw_cpu = _warm(sqs, "cpu"), _warm(cloudwatch, "cpu")
    sqs_calls, cw_calls = _calls(sqs), _calls(cloudwatch)
    reads = sqs_calls.get("GetQueueAttributes", 0.0)
    round_seconds = billed_seconds(sqs_cpu, reads, memory_mb)
    cw_seconds = billed_seconds(cw_cpu, cw_calls.get("GetMetricData", 0.0), memory_mb)
    if rounds_design and idle:
        invocations, sqs_seconds, sqs_requests = 1.0, round_seconds, reads
    elif rounds_design:
        invocations, sqs_seconds, sqs_requests = 1.0, 45.0 + 4 * round_seconds, 4 * reads
    else:
        # 4 ticks a minute, each a round; the schedule only checks the chain (one Redis read, counted
        # as SCHEDULE_CHECK_SECONDS); 4 ticks sent, received by a poll and deleted by the mapping
        invocations, sqs_seconds = 5.0, 4 * round_seconds + SCHEDULE_CHECK_SECONDS
        polls = ESM_POLLERS * 60 / ESM_LONG_POLL_SECONDS
        sqs_requests = 4 * reads + 4 * sqs_calls.get("SendMessage", 1.0) + 4 + polls
    redis_commands = _warm(sqs, "redis") * min(invocations, 4.0) + _warm(cloudwatch, "redis")
    server_reads = 2 * 60 * 15  # two metrics' snapshots a second, ~15 ECPUs each (150 series, ~15 KB)
    minute_gb_s = (sqs_seconds + cw_seconds) * memory_mb / 1024
    return Usage(
        requests=(invocations + 1) * MINUTES_PER_MONTH,
        gb_s=minute_gb_s * MINUTES_PER_MONTH,
        sqs=sqs_requests * MINUTES_PER_MONTH,
        metrics=_warm(cloudwatch, "metrics") * MINUTES_PER_MONTH,
        ecpus=(redis_commands + server_reads) * MINUTES_PER_MONTH,
        redis=True,
    )


def keda_usage(triggers_sqs: int, triggers_cloudwatch: int, *, cached: bool, clusters: int = 1) -> Usage:
    """KEDA: every trigger polled every 30 s by the operator, and (without useCachedMetrics) read again
    at every HPA sync (15 s): one GetQueueAttributes / one single-metric GetMetricData each."""
    per_minute = 2 + (0 if cached else 4)
    return Usage(
        sqs=clusters * triggers_sqs * per_minute * MINUTES_PER_MONTH,
        metrics=clusters * triggers_cloudwatch * per_minute * MINUTES_PER_MONTH,
    )


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _report(scenarios: tuple[Scenario, ...], results: dict[str, dict[str, Any]], quick: bool) -> str:
    lines = [
        f"Each scenario in a fresh interpreter importing the real handler (tracing off, the template's "
        f"default); medians of {WARM_INVOCATIONS} warm invocations (SQS: ticks, one round each; CloudWatch: "
        "a forced fetch of every query, what the minute's invocation does). CPU is the process's (all "
        "threads); moto answers from another process on the same shared 2-core machine, so wall times "
        "overstate AWS's. Busy = three messages in every queue.",
        "",
        "| scenario | CPU per invocation | wall | AWS calls | Redis commands | peak RSS | tracemalloc peak "
        "| cold: import + first invocation (wall / CPU) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for scenario in scenarios:
        figures = results[scenario.name]
        calls_text = ", ".join(f"{name} {count:,.0f}" for name, count in _calls(figures).items())
        cpu_ms, wall_ms = _warm(figures, "cpu") * 1000, _warm(figures, "wall") * 1000
        cold = f"{figures['cold_wall']:.2f} s / {figures['cold_cpu']:.2f} s"
        lines.append(
            f"| {scenario.name} | {cpu_ms:,.0f} ms | {wall_ms:,.0f} ms | {calls_text} "
            f"| {_warm(figures, 'redis'):,.0f} | {figures['maxrss_mib']:.0f} MiB "
            f"| {figures['traced_peak_mib']:.1f} MiB | {cold} |"
        )
    header = "| scenario | " + " | ".join(f"{size} MB" for size in MEMORY_SIZES) + " |"
    lines += [
        "",
        f"GB-seconds per invocation by memory size: CPU ÷ the vCPU share (memory ÷ {FULL_VCPU_MB} MB) plus "
        f"{AWS_CALL_SECONDS * 1000:.0f} ms per wave of 16 concurrent AWS calls (assumed in-region latency); "
        "`-` where peak RSS exceeds three quarters of the memory:",
        "",
        header,
        "| --- | " + " | ".join("---:" for _ in MEMORY_SIZES) + " |",
    ]
    for scenario in scenarios:
        figures = results[scenario.name]
        cpu, calls = _warm(figures, "cpu"), float(sum(_calls(figures).values()))
        cells = [
            f"{gb_seconds(cpu, calls, size):.3f} ({billed_seconds(cpu, calls, size):.2f} s)"
            if figures["maxrss_mib"] <= 0.75 * size
            else "-"
            for size in MEMORY_SIZES
        ]
        lines.append(f"| {scenario.name} | " + " | ".join(cells) + " |")
    sqs = results["SQS, 50 queues, busy"]
    cloudwatch = results["CloudWatch, 50 queries"]
    memory = max(pick_memory(sqs), pick_memory(cloudwatch))
    idle = results["SQS, 50 queues, idle"]
    lines += ["", *_memory_verdict(results, memory), "", *_bill(sqs, idle, cloudwatch, memory, quick)]
    return "\n".join(lines)


def _memory_verdict(results: dict[str, dict[str, Any]], memory: int) -> list[str]:
    lines = [
        f"**Default `CollectorMemorySize`: {memory} MB** — the smallest size that holds the process with a "
        "quarter spare, ends a 50-queue round (and the 50-query fetch) within 2 s, and a cold start (its "
        "CPU at that share) within 5 s. Below 1,769 MB an "
        "invocation is CPU-bound, so its GB-seconds barely change with the size (the CPU share shrinks "
        "as the memory does): more memory buys a shorter round, not a cheaper one."
    ]
    big = results.get("SQS, 1,000 queues, busy")
    if big is not None:
        cpu, calls = _warm(big, "cpu"), sum(_calls(big).values())
        fits = [size for size in MEMORY_SIZES if billed_seconds(cpu, calls, size) <= 5.0]
        lines.append(
            f"1,000 queues take {cpu:.2f} CPU-seconds a round: give that function "
            f"{fits[0] if fits else MEMORY_SIZES[-1]} MB or more so a round ends within 5 s of its 15 s "
            f"interval ({billed_seconds(cpu, calls, memory):.1f} s at {memory} MB)."
        )
    return lines


def _bill(
    sqs: dict[str, Any], idle: dict[str, Any], cloudwatch: dict[str, Any], memory: int, quick: bool
) -> list[str]:
    designs: list[tuple[str, Usage]] = [
        (
            f"tidegauge, tick chain, {memory} MB, busy (any number of HPAs; 1 or 3 clusters)",
            tidegauge_usage(sqs, cloudwatch, memory),
        ),
        (f"tidegauge, tick chain, {memory} MB, idle fleet", tidegauge_usage(idle, cloudwatch, memory)),
        (
            "tidegauge before: rounds in a minute-long invocation, 512 MB, busy",
            tidegauge_usage(sqs, cloudwatch, 512, rounds_design=True),
        ),
        (
            "tidegauge before: rounds, 512 MB, idle fleet (one round a minute: ~60 s to see a burst)",
            tidegauge_usage(idle, cloudwatch, 512, rounds_design=True, idle=True),
        ),
    ]
    for hpas in (10, 100, 1000):
        triggers = max(hpas, 100) // 2
        for cached in (False, True):
            for clusters in (1, 3):
                label = (
                    f"KEDA, {hpas:,} HPAs ({triggers} SQS + {triggers} CloudWatch triggers), "
                    f"{'useCachedMetrics' if cached else 'no cache'}"
                    + (", 3 clusters" if clusters == 3 else "")
                )
                designs.append((label, keda_usage(triggers, triggers, cached=cached, clusters=clusters)))
    lines = [
        "Monthly bill, us-east-1 list prices (as published, cross-checked 2026-12-02; constants in "
        "`benchmarks/bench_cost.py`): "
        "Lambda $0.20 per million requests and $0.0000133334 per GB-s (arm64); SQS $0.40 per million "
        "requests; GetMetricData $0.01 per 1,000 metrics requested; ElastiCache Serverless for Valkey "
        "$0.084 per GB-hour (100 MB minimum) and $0.0023 per million ECPUs. Always-free tiers (per "
        "account, shared with everything else in it): 1 M Lambda requests and 400,000 GB-s, 1 M SQS "
        "requests; none for GetMetricData. Signals: 50 queues (sampled every 15 s) and 50 CloudWatch "
        "metrics (60 s periods, fetched once a minute). KEDA: one trigger per signal an HPA reads "
        "(at least one per signal; 1,000 HPAs = 10 readers per signal), polled every 30 s, and read "
        "again at each 15 s HPA sync without `useCachedMetrics`. In-cluster CPU of KEDA or the tidegauge "
        "server, VPC endpoints or NAT (both need a way to AWS) and CloudWatch Logs are left out.",
        "",
        "| design | Lambda requests | Lambda GB-s | SQS requests | GetMetricData | Redis | total (list) | "
        "total after free tiers |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, usage in designs:
        bill = usage.bill()
        free = bill.after_free_tier(usage.requests, usage.gb_s, usage.sqs)
        lines.append(
            f"| {label} | {_money(bill.lambda_requests)} | {_money(bill.lambda_gb_seconds)} "
            f"({usage.gb_s:,.0f} GB-s) | {_money(bill.sqs_requests)} ({usage.sqs / 1e6:,.1f} M) "
            f"| {_money(bill.metrics_requested)} ({usage.metrics / 1e6:,.1f} M) | {_money(bill.redis)} "
            f"| {_money(bill.total)} | {_money(free)} |"
        )
    return [*lines, "", "(quick run)" if quick else ""]
