"""How the server serves: the ``metrics:`` policies (max age, fallback) and the ``exposure:`` rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from tidegauge import names
from tidegauge.config.messages import did_you_mean
from tidegauge.config.model import ExposureRule, Fallback, LastKnownGood, Window
from tidegauge.config.schema import EXPOSURE_KEYS, METRIC_POLICY_KEYS
from tidegauge.config.section import Section, as_section
from tidegauge.config.signals import parse_fallback, parse_keep_alive, parse_window

_GLOB_CHARACTERS = frozenset("*?[")


class MetricEntry(NamedTuple):
    max_age_seconds: float | None
    fallback: Fallback | None
    unit: str | None
    description: str | None
    last_known_good: LastKnownGood | None = None
    window: Window | None = None
    keep_alive_seconds: float | None = None


def parse_metric_entries(root: Section, produced: set[str]) -> dict[str, tuple[str, MetricEntry]]:
    """The ``metrics:`` section: metric -> (field path, entry)."""
    raw = root.data.get("metrics")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        root.wrong_type(
            "metrics", raw, "a mapping of metric names to policies", "write metrics as {sqs_messages: {…}}"
        )
        return {}
    result: dict[str, tuple[str, MetricEntry]] = {}
    for metric, body in raw.items():
        path = f"metrics.{metric}"
        if not isinstance(metric, str) or not names.METRIC_NAME.accepts(metric):
            root.issues.add(path, f"{metric!r} is not a valid metric name", names.METRIC_NAME.fix)
            continue
        if metric not in produced:
            root.issues.add(
                path,
                f"no source produces metric {metric!r}{did_you_mean(metric, produced)}",
                f"use a metric a source produces: {', '.join(sorted(produced)) or 'none yet'}",
            )
        section = as_section(root.issues, path, body if body is not None else {}, METRIC_POLICY_KEYS)
        if section is None:
            continue
        fallback, last_known_good = parse_fallback(section)
        result[metric] = (
            path,
            MetricEntry(
                max_age_seconds=section.optional_number("max_age_seconds", above=0),
                fallback=fallback,
                unit=section.string("unit", max_length=64),
                description=section.string("description", max_length=1024),
                last_known_good=last_known_good,
                window=parse_window(section),
                keep_alive_seconds=parse_keep_alive(section),
            ),
        )
    return result


def parse_exposure(root: Section, produced: set[str]) -> tuple[ExposureRule, ...] | None:
    elements = root.items("exposure")
    if elements is None:
        return None
    if not elements:
        root.issues.add(
            "exposure",
            "is an empty list, which would deny every namespace every metric",
            "remove exposure to let every namespace read every metric, or add rules",
        )
    rules: list[ExposureRule] = []
    for path, raw in elements:
        section = as_section(root.issues, path, raw, EXPOSURE_KEYS)
        if section is None:
            continue
        namespaces = section.strings(
            "namespaces", required=True, fix="list namespaces (globs allowed, e.g. team-*)"
        )
        for item_path, pattern in namespaces or []:
            if not _GLOB_CHARACTERS & set(pattern) and not names.NAMESPACE.accepts(pattern):
                root.issues.add(
                    item_path,
                    f"{pattern!r} is not a Kubernetes namespace name",
                    "use lower-case letters, digits and '-' (at most 63), or a glob such as team-*",
                )
        metrics = section.strings(
            "metrics", required=True, fix="list metric names (globs allowed, e.g. aurora_*)"
        )
        for item_path, pattern in metrics or []:
            if not _GLOB_CHARACTERS & set(pattern) and pattern not in produced:
                root.issues.add(
                    item_path,
                    f"no source produces metric {pattern!r}{did_you_mean(pattern, produced)}",
                    f"use a metric a source produces ({', '.join(sorted(produced)) or 'none yet'}) or a glob",
                )
        selector = section.string("selector", fix="remove selector to expose every series")
        if selector is not None:
            # Imported here: a document without exposure selectors (most collectors') never needs the
            # selector parser, which would add 2 ms to every cold start.
            from tidegauge.selectors import SelectorError, parse_selector

            try:
                parse_selector(selector)
            except SelectorError as error:
                root.issues.add(
                    section.at("selector"),
                    f"selector {selector!r}: {error}",
                    "use Kubernetes label-selector syntax, e.g. team=shop,env in (prod,stage)",
                )
        rules.append(
            ExposureRule(
                namespaces=tuple(pattern for _, pattern in namespaces or []),
                metrics=tuple(pattern for _, pattern in metrics or []),
                selector=selector,
            )
        )
    return tuple(rules)
