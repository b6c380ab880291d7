"""Options, connection and rendering shared by the operator commands."""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass

from tidegauge import environment
from tidegauge.config import Config, Defaults, RedisSettings, load_config
from tidegauge.errors import UsageError
from tidegauge.quantity import QuantityError, format_quantity
from tidegauge.redis_settings import connection_settings, secret_id
from tidegauge.store import Store


def add_redis_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--redis-url`` and ``--config``: where the store is, and the serving options it is read with."""
    parser.add_argument(
        "--redis-url", help=f"Redis URL (beats ${environment.REDIS_URL}, which beats the config's redis.url)"
    )
    parser.add_argument("--config", help=f"config file (default: ${environment.CONFIG_FILE})")


@dataclass(frozen=True)
class Target:
    """The store an operator command reads, and the config it was found through (if any)."""

    store: Store
    config: Config | None

    def max_age_seconds(self, metric: str) -> float:
        """The age past which the server refuses a series of ``metric`` as stale (its own rule)."""
        if self.config is None:
            return Defaults().max_age_seconds
        return self.config.metric_policy(metric).max_age_seconds


def redis_settings(args: argparse.Namespace) -> tuple[RedisSettings, Config | None]:
    """``--redis-url``, else ``$TIDEGAUGE_REDIS_URL``, else the config file's ``redis`` section."""
    url = args.redis_url or os.environ.get(environment.REDIS_URL)
    config_path = args.config or os.environ.get(environment.CONFIG_FILE)
    if config_path:
        config = load_config(config_path, redis_url=args.redis_url)
        return config.redis, config
    if url:
        return RedisSettings(url=url), None
    raise UsageError(f"say where Redis is: --redis-url URL, ${environment.REDIS_URL} or --config FILE")


def open_target(args: argparse.Namespace) -> Target:
    """Connect as every tidegauge command does: URL, cluster mode, TLS CA, password or AUTH secret."""
    redis, config = redis_settings(args)
    secret = None
    name = secret_id(redis)
    if name:
        from tidegauge.sources.aws import ClientFactory, read_secret  # boto3 only when a secret is named

        secret = read_secret(ClientFactory(), name)
    return Target(Store.connect(connection_settings(redis, secret=secret)), config)


def age(unix_seconds: float, now: float | None = None) -> str:
    if unix_seconds <= 0:
        return "-"
    seconds = (time.time() if now is None else now) - unix_seconds
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def plain_number(value: float) -> str:
    """A value as a person reads it: whole numbers in full below 1e15, others to 6 significant digits."""
    value = float(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def quantity_if_different(value: float) -> str:
    """The Kubernetes quantity the server would answer, or "" when it reads the same as the number."""
    try:
        quantity = format_quantity(value)
    except QuantityError:
        return "(not servable)"
    return "" if quantity == plain_number(value) else quantity


def integral(number: float) -> int | float:
    """Counters as integers (JSON ``3``, not ``3.0``); other numbers unchanged."""
    return int(number) if float(number).is_integer() else number


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False))
        for row in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)
