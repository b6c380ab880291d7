"""``tidegauge metrics [METRIC] [-l SELECTOR]``: what is stored, as the HPA would see it.

Each series is shown with its value as a number (and the Kubernetes quantity the server answers, where
that reads differently), its age by source time, and whether the server would refuse it as stale (older
than the metric's max age in the config given, else the default). Exit status: 0 when something is
listed, 1 when the metric is unknown or the selector matches no series, 2 for a bad selector.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import time

from tidegauge.errors import OperationFailed
from tidegauge.ops.common import (
    add_redis_arguments,
    age,
    integral,
    open_target,
    plain_number,
    quantity_if_different,
    table,
)
from tidegauge.selectors import parse_selector


class UnknownMetric(OperationFailed):
    """The metric is not in Redis; the message lists the known ones."""

    hint = "`tidegauge metrics` lists the metrics in Redis; `tidegauge status` shows the collectors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metric", nargs="?", help="a metric name; without it, list the metrics")
    parser.add_argument(
        "-l", "--selector", default="", help="label selector, e.g. 'queue=orders,state!=delayed'"
    )
    add_redis_arguments(parser)


def run(args: argparse.Namespace) -> int:
    selector = parse_selector(args.selector)
    target = open_target(args)
    store = target.store
    try:
        if not args.metric:
            infos = store.list_metrics()
            if args.json:
                print(json.dumps([dataclasses.asdict(info) for info in infos]))
            else:
                rows = [[i.name, i.unit, str(i.series_count), age(i.updated_at), i.source] for i in infos]
                print(table(["METRIC", "UNIT", "SERIES", "UPDATED", "SOURCE"], rows))
            return 0
        known = store.metric_names()
        if args.metric not in known:
            close = difflib.get_close_matches(args.metric, known, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            names = ", ".join(sorted(known)) or "none"
            raise UnknownMetric(f"no metric {args.metric!r} in Redis (known: {names}){suggestion}")
        samples = store.read_latest(args.metric, selector)
    finally:
        store.close()
    now = time.time()
    max_age = target.max_age_seconds(args.metric)
    stale = [now - s.timestamp > max_age for s in samples]
    if args.json:
        series = [
            {"labels": s.labels, "value": integral(s.value), "timestamp": s.timestamp, "stale": is_stale}
            for s, is_stale in zip(samples, stale, strict=True)
        ]
        print(json.dumps(series))
        return 0 if samples else 1
    rows = [
        [
            s.key.label_string,
            plain_number(s.value),
            quantity_if_different(s.value),
            age(s.timestamp, now),
            "stale" if is_stale else "",
        ]
        for s, is_stale in zip(samples, stale, strict=True)
    ]
    print(table(["LABELS", "VALUE", "QUANTITY", "AGE", "STALE"], rows))
    fresh_sum = sum(s.value for s, is_stale in zip(samples, stale, strict=True) if not is_stale)
    stale_count = sum(stale)
    shown_sum = plain_number(fresh_sum)
    quantity = quantity_if_different(fresh_sum)
    print(
        f"{len(samples)} series, {stale_count} stale (older than {max_age:g} s: the server leaves them out); "
        f"sum of the fresh ones {shown_sum}" + (f" ({quantity})" if quantity else "")
    )
    if not samples:
        print(f"the selector {args.selector!r} matches no series of {args.metric}")
    return 0 if samples else 1
