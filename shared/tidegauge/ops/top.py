"""``tidegauge top``: a live table of every series (value in human units, age, source, stale, fallback),
sortable, with the collectors' statuses at the foot.

On a terminal it refreshes in place (``rich``'s Live display) every ``--interval`` seconds until
interrupted; when the output is not a terminal (a pipe, a file, CI) it prints plain lines once (or
``--iterations`` times). Exit status: 0, or 1 when a collector's last run failed or a series is stale.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tidegauge.ops.common import add_redis_arguments, age, open_target, table
from tidegauge.ops.series_view import SORT_KEYS, SeriesRow, Snapshot, take_snapshot

HEADERS = ["METRIC", "LABELS", "VALUE", "AGE", "SOURCE", "STALE", "FALLBACK"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_arguments(parser)
    parser.add_argument("--sort", choices=SORT_KEYS, default="metric", help="row order (default metric)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    parser.add_argument(
        "--iterations", type=int, help="refreshes before exiting (default: until Ctrl-C on a terminal, or 1)"
    )


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        from tidegauge.errors import UsageError

        raise UsageError(f"--interval must be above 0 seconds, got {args.interval}")
    target = open_target(args)
    terminal = sys.stdout.isatty()
    iterations = args.iterations if args.iterations is not None else (None if terminal else 1)
    try:
        if terminal:
            snapshot = _live(target, args.sort, args.interval, iterations)
        else:
            snapshot = _plain(target, args.sort, args.interval, iterations or 1)
    finally:
        target.store.close()
    return health(snapshot)


def health(snapshot: Snapshot) -> int:
    failed = any(not status.ok for status in snapshot.statuses.values())
    return 1 if failed or any(row.stale for row in snapshot.rows) else 0


def plain_lines(snapshot: Snapshot, sort: str) -> str:
    """The snapshot as aligned plain text: series, then collectors."""
    rows = [_series_cells(row, snapshot.taken_at) for row in snapshot.sorted_rows(sort)]
    stale = sum(row.stale for row in snapshot.rows)
    lines = [table(HEADERS, rows), f"{len(snapshot.rows)} series, {stale} stale", ""]
    lines.append(table(["COLLECTOR", "KIND", "LAST", "AGO", "SAMPLES", "ERRORS"], _collector_rows(snapshot)))
    return "\n".join(lines)


def _series_cells(row: SeriesRow, now: float) -> list[str]:
    return [
        row.metric,
        row.labels or "-",
        row.human,
        age(row.timestamp, now),
        row.source or "-",
        "stale" if row.stale else "",
        "fallback" if row.fallback else "",
    ]


def _collector_rows(snapshot: Snapshot) -> list[list[str]]:
    return [
        [
            status.source,
            status.kind,
            "ok" if status.ok else "FAILED",
            age(status.finished_at, snapshot.taken_at),
            str(status.samples_written),
            "; ".join(status.errors)[:100],
        ]
        for status in snapshot.statuses.values()
    ]


def _plain(target: Any, sort: str, interval: float, iterations: int) -> Snapshot:
    snapshot = take_snapshot(target)
    for index in range(iterations):
        if index:
            time.sleep(interval)
            snapshot = take_snapshot(target)
            print()
        print(plain_lines(snapshot, sort), flush=True)
    return snapshot


def _live(target: Any, sort: str, interval: float, iterations: int | None) -> Snapshot:
    from rich.console import Group
    from rich.live import Live
    from rich.table import Table

    def render(snapshot: Snapshot) -> Group:
        series = Table(title=f"tidegauge top - {len(snapshot.rows)} series (sorted by {sort})", expand=True)
        for header in HEADERS:
            series.add_column(header, justify="right" if header in ("VALUE", "AGE") else "left")
        for row in snapshot.sorted_rows(sort):
            style = "red" if row.stale else ("yellow" if row.fallback else None)
            series.add_row(*_series_cells(row, snapshot.taken_at), style=style)
        collectors = Table(title="collectors", expand=True)
        for header in ("COLLECTOR", "KIND", "LAST", "AGO", "SAMPLES", "ERRORS"):
            collectors.add_column(header)
        for cells in _collector_rows(snapshot):
            collectors.add_row(*cells, style="red" if cells[2] == "FAILED" else None)
        return Group(series, collectors)

    snapshot = take_snapshot(target)
    count = 1
    try:
        with Live(render(snapshot), refresh_per_second=4, screen=False) as live:
            while iterations is None or count < iterations:
                time.sleep(interval)
                snapshot = take_snapshot(target)
                live.update(render(snapshot))
                count += 1
    except KeyboardInterrupt:
        pass
    return snapshot
