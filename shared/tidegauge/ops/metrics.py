"""``tidegauge metrics [METRIC] [-l SELECTOR]``: what is stored, as the HPA would see it."""

from __future__ import annotations

import argparse
import dataclasses
import json

from tidegauge.ops.common import add_redis_arguments, age, open_store, table
from tidegauge.quantity import format_quantity
from tidegauge.selectors import SelectorError, parse_selector


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metric", nargs="?", help="a metric name; without it, list the metrics")
    parser.add_argument(
        "-l", "--selector", default="", help="label selector, e.g. 'queue=orders,state!=delayed'"
    )
    add_redis_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        selector = parse_selector(args.selector)
    except SelectorError as error:
        raise SystemExit(f"tidegauge metrics: {error}") from error
    store = open_store(args)
    try:
        if not args.metric:
            infos = store.list_metrics()
            if args.json:
                print(json.dumps([dataclasses.asdict(info) for info in infos]))
            else:
                rows = [[i.name, i.unit, str(i.series_count), age(i.updated_at), i.source] for i in infos]
                print(table(["METRIC", "UNIT", "SERIES", "UPDATED", "SOURCE"], rows))
            return 0
        samples = store.read_latest(args.metric, selector)
        if args.json:
            print(
                json.dumps(
                    [{"labels": s.labels, "value": s.value, "timestamp": s.timestamp} for s in samples]
                )
            )
            return 0 if samples else 1
        rows = [[s.key.label_string, format_quantity(s.value), age(s.timestamp)] for s in samples]
        print(table(["LABELS", "VALUE", "AGE"], rows))
        print(f"{len(samples)} series, sum {format_quantity(sum(s.value for s in samples))}")
        return 0 if samples else 1
    finally:
        store.close()
