"""``tidegauge collect --once | --loop``: the collectors outside Lambda (AWS, a moto server, LocalStack).

One ``--once`` run is what one scheduled invocation does (rounds until quiet or ``--timeout``);
``--loop`` starts one every ``--every`` seconds, like the EventBridge schedule. Each invocation prints
its summary as one JSON line. Exit status (the ``tidegauge`` contract): 0 all sources ok; 1 some
queues/queries failed, or an invocation failed (Redis unreachable, the AUTH secret unreadable); 2 a usage
or configuration error (bad flags, invalid config). A failed invocation in ``--loop`` is reported on stderr
and the loop goes on, as the schedule would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

from tidegauge import environment
from tidegauge.config import Config, Source, load_config
from tidegauge.errors import TidegaugeError, UsageError, explain
from tidegauge.redis_settings import connection_settings, secret_id
from tidegauge.sources.aws import ClientFactory, read_secret
from tidegauge.sources.collector import Collector
from tidegauge.store import Store

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds greater than 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="run one invocation, as the schedule would")
    mode.add_argument(
        "--loop", action="store_true", help="run an invocation every --every seconds until Ctrl-C"
    )
    parser.add_argument(
        "--config", metavar="FILE", help=f"YAML or JSON config file (default: ${environment.CONFIG_FILE})"
    )
    parser.add_argument(
        "--source", action="append", default=[], metavar="NAME", help="collect only this source (repeatable)"
    )
    parser.add_argument("--kind", choices=("sqs", "cloudwatch"), help="collect only sources of this type")
    parser.add_argument("--redis-url", metavar="URL", help=f"beats ${environment.REDIS_URL} and redis.url")
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help=f"AWS endpoint, e.g. a moto server (beats ${environment.AWS_ENDPOINT_URL})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="time one invocation may take (default 60)",
    )
    parser.add_argument(
        "--every",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="--loop: seconds between invocations (default 60)",
    )
    parser.add_argument(
        "--duration", type=positive_seconds, metavar="SECONDS", help="--loop: stop after this many seconds"
    )


def run(args: argparse.Namespace) -> int:
    if args.once and args.duration is not None:
        raise UsageError("--duration applies to --loop only")
    config = _load(args.config, args.redis_url)
    sources = select(config, args.source, args.kind)
    collector = Collector(ClientFactory(endpoint_url=args.endpoint_url))
    if args.once:
        return invoke(collector, config, sources, timeout_seconds=args.timeout)
    return loop(
        lambda: _reported(lambda: invoke(collector, config, sources, timeout_seconds=args.timeout)),
        every_seconds=args.every,
        duration_seconds=args.duration,
    )


def _load(path: str | None, redis_url: str | None) -> Config:
    path = path or os.environ.get(environment.CONFIG_FILE)
    if not path:
        raise UsageError(f"no config: pass --config FILE or set ${environment.CONFIG_FILE}")
    return load_config(path, redis_url=redis_url)


def select(config: Config, names: Sequence[str], kind: str | None) -> list[Source]:
    """The sources to collect: all, or the named ones; optionally of one type only."""
    if names:
        try:
            sources = [config.source(name) for name in dict.fromkeys(names)]
        except KeyError as error:
            raise UsageError(str(error.args[0])) from None
    else:
        sources = list(config.sources)
    return [source for source in sources if kind is None or source.kind == kind]


def invoke(collector: Collector, config: Config, sources: Sequence[Source], *, timeout_seconds: float) -> int:
    """One invocation with a Lambda-like deadline; prints the summary as a JSON line.

    Raises what stops the whole invocation (Redis unreachable, the secret unreadable); a failing queue or
    query only makes the result 1.
    """
    deadline = time.monotonic() + timeout_seconds
    name = secret_id(config.redis)
    secret = read_secret(collector.factory, name) if name else None
    store = Store.connect(
        connection_settings(config.redis, secret=secret), history_length=config.redis.history_length
    )
    try:
        result = collector.collect(
            store,
            config,
            sources,
            remaining_time_ms=lambda: int((deadline - time.monotonic()) * 1000),
        )
    finally:
        store.close()
    print(json.dumps(result.summary(), sort_keys=True), flush=True)
    return EXIT_OK if result.ok else EXIT_FAILED


def _reported(invocation: Callable[[], int]) -> int:
    """Run one invocation of a loop; a failure is reported on stderr and counts as 1, the loop goes on."""
    try:
        return invocation()
    except TidegaugeError as error:
        print(f"tidegauge collect: {explain(error)}", file=sys.stderr, flush=True)
        return EXIT_FAILED


def loop(
    invocation: Callable[[], int],
    *,
    every_seconds: float,
    duration_seconds: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``invocation`` every ``every_seconds`` until Ctrl-C or ``duration_seconds``; worst exit status."""
    if not every_seconds > 0:
        raise UsageError(f"--every must be greater than 0 seconds, not {every_seconds:g}")
    started = clock()
    worst = EXIT_OK
    count = 0
    try:
        while True:
            worst = max(worst, invocation())
            count += 1
            next_start = started + count * every_seconds
            if duration_seconds is not None and next_start >= started + duration_seconds:
                break
            sleep(max(0.0, next_start - clock()))
    except KeyboardInterrupt:
        print(f"tidegauge collect: stopped after {count} invocations", file=sys.stderr)
    return worst
