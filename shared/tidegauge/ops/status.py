"""``tidegauge status``: each collector's last run and its running cost totals."""

from __future__ import annotations

import argparse
import dataclasses
import json

from tidegauge.ops.common import add_redis_arguments, age, integral, open_target, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_arguments(parser)


def run(args: argparse.Namespace) -> int:
    store = open_target(args).store
    try:
        statuses = store.read_statuses()
        usage = {source: store.read_usage(source) for source in statuses}
    finally:
        store.close()
    exit_code = 0 if all(status.ok for status in statuses.values()) else 1
    if args.json:
        report = {
            source: {
                "last_run": dataclasses.asdict(status),
                "usage": {name: integral(value) for name, value in usage[source].items()},
            }
            for source, status in statuses.items()
        }
        print(json.dumps(report))
        return exit_code
    rows = [
        [
            status.source,
            status.kind,
            "ok" if status.ok else "FAILED",
            age(status.finished_at),
            str(status.samples_written),
            str(sum(status.api_calls.values())),
            str(status.metrics_requested),
            f"{status.duration_share_seconds:.1f}",
            f"{usage[status.source].get('runs', 0):.0f}",
            "; ".join(status.errors)[:80],
        ]
        for status in statuses.values()
    ]
    headers = [
        "SOURCE",
        "KIND",
        "LAST",
        "AGO",
        "SAMPLES",
        "API CALLS",
        "METRICS",
        "SECONDS",
        "RUNS",
        "ERRORS",
    ]
    print(table(headers, rows))
    return exit_code
