"""Options and connection shared by the operator commands."""

from __future__ import annotations

import argparse
import os
import time

from tidegauge import environment
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store


def add_redis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help=f"Redis URL (default: ${environment.REDIS_URL} or the config's)")
    parser.add_argument("--config", help=f"config file (default: ${environment.CONFIG_FILE})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def open_store(args: argparse.Namespace) -> Store:
    """The store named by ``--redis-url``, else the environment, else the config file."""
    url = args.redis_url or os.environ.get(environment.REDIS_URL)
    config_path = args.config or os.environ.get(environment.CONFIG_FILE)
    if url:
        return Store.connect(ConnectionSettings(url))
    if config_path:
        from tidegauge.config import load_config

        redis_settings = load_config(config_path).redis
        return Store.connect(
            ConnectionSettings(
                redis_settings.url,
                cluster=redis_settings.cluster,
                username=redis_settings.username,
                tls_ca_file=redis_settings.tls_ca_file,
                socket_timeout_seconds=redis_settings.socket_timeout_seconds,
            )
        )
    raise SystemExit(
        f"tidegauge: say where Redis is: --redis-url URL, ${environment.REDIS_URL} or --config FILE"
    )


def age(unix_seconds: float, now: float | None = None) -> str:
    if unix_seconds <= 0:
        return "-"
    seconds = (time.time() if now is None else now) - unix_seconds
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False))
        for row in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)
