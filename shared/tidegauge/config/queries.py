"""One CloudWatch query: a metric stat, a metric-math expression, or a preset with its identifier."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

from tidegauge import names
from tidegauge.config.errors import Issues
from tidegauge.config.messages import unknown
from tidegauge.config.model import CloudWatchQuery, MetricStatSpec
from tidegauge.config.presets import PRESETS, Preset
from tidegauge.config.schema import QUERY_KEYS, QUERY_KINDS, STAT_KEYS
from tidegauge.config.section import Section, as_section, parse_labels

_STANDARD_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum", "IQM")
_PERCENTILE_STAT = re.compile(r"(p|tm|wm|tc|ts|pr)(\d+(\.\d+)?)")
_RANGE_STAT = re.compile(r"(TM|WM|TC|TS|PR)\([^():]*:[^():]*\)")
_STAT_FIX: Final = (
    "use Average, Sum, Minimum, Maximum, SampleCount, IQM, a percentile such as p99 or p99.9, or tm90"
)
_EXPRESSION_ID = re.compile(r"[a-z][A-Za-z0-9_]{0,254}")
_EXPRESSION_REFERENCE = re.compile(r"(?<![\w.])([a-z][A-Za-z0-9_]*)(?![\w(])")
_STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_SHORT_PERIODS = (1, 5, 10, 30)
_MAX_DIMENSIONS = 30


def parse_query(issues: Issues, path: str, raw: Any, lookback: int) -> CloudWatchQuery:
    section = as_section(issues, path, raw, QUERY_KEYS)
    if section is None:
        return CloudWatchQuery(metric="")
    present = [
        (kind, required) for kind, keys, required in QUERY_KINDS if any(section.has(key) for key in keys)
    ]
    if len(present) != 1:
        kinds = " or ".join(kind for kind, _, _ in QUERY_KINDS)
        if present:
            problem = "mixes " + " and ".join(kind for kind, _ in present)
            fix = f"keep exactly one of {kinds} per query; split it into separate queries"
        else:
            problem = "says nothing to query"
            fix = f"set {kinds}"
        issues.add(path, problem, fix)
        return CloudWatchQuery(metric="")
    kind, required = present[0]
    for key in required:
        if not section.has(key):
            issues.add(section.at(key), "is required", f"a {kind} query needs {' and '.join(required)}")
    preset = _parse_preset_name(section) if kind == "preset/identifier" else None
    labels = parse_labels(
        section,
        reserved=(preset.label,) if preset else (),
        reserved_fix=f"rename or remove it: the preset sets {preset.label!r} from identifier"
        if preset
        else "",
    )
    metric = section.string(
        "metric",
        required=kind != "preset/identifier",
        grammar=names.METRIC_NAME,
        fix=names.METRIC_NAME.fix
        if section.has("metric")
        else "name the metric this query serves, e.g. metric: orders",
    )
    period_seconds = _parse_period(
        section, default=preset.period_seconds if preset else 60, lookback=lookback
    )
    max_age_seconds = section.optional_number("max_age_seconds", above=0)
    missing_as_zero = section.boolean("missing_as_zero", preset.missing_as_zero if preset else False)
    scale = _parse_scale(section, default=preset.scale if preset else 1.0)
    query = CloudWatchQuery(
        metric=metric or (preset.metric if preset else ""),
        labels=labels,
        period_seconds=period_seconds,
        max_age_seconds=max_age_seconds,
        missing_as_zero=missing_as_zero,
        scale=scale,
    )
    if kind == "namespace/metric_name/stat":
        spec = _parse_stat_spec(section)
        return dataclasses.replace(query, metric_stat=spec)
    if kind == "expression/metrics":
        expression, metrics = _parse_expression(section)
        return dataclasses.replace(query, expression=expression, metrics=metrics)
    identifier = _parse_identifier(section, preset)
    if preset is None:
        return query
    return dataclasses.replace(
        query,
        labels=tuple(sorted((*labels, (preset.label, identifier)))),
        description=preset.description,
        metric_stat=MetricStatSpec(
            namespace=preset.namespace,
            metric_name=preset.metric_name,
            stat=preset.stat,
            dimensions=((preset.dimension, identifier),),
        ),
    )


def _parse_preset_name(section: Section) -> Preset | None:
    name = section.string("preset")
    if name is None:
        return None
    preset = PRESETS.get(name)
    if preset is None:
        section.issues.add(
            section.at("preset"),
            unknown("preset", name, PRESETS),
            f"use one of the presets: {', '.join(PRESETS)}",
        )
    return preset


def _parse_identifier(section: Section, preset: Preset | None) -> str:
    identifier = section.string("identifier", max_length=1024)
    if identifier is None or preset is None:
        return ""
    if not names.LABEL_VALUE.accepts(identifier):
        section.issues.add(
            section.at("identifier"),
            f"{identifier!r} cannot be the value of label {preset.label!r}",
            f"{names.LABEL_VALUE.fix}; otherwise query namespace/metric_name/stat with labels of your own",
        )
    return identifier


def _parse_period(section: Section, *, default: int, lookback: int) -> int:
    period = section.integer("period_seconds", default, above=0)
    if period not in _SHORT_PERIODS and period % 60:
        section.issues.add(
            section.at("period_seconds"),
            f"{period} is not a CloudWatch period",
            "use 1, 5, 10, 30 (high-resolution metrics) or a multiple of 60",
        )
    elif period > lookback:
        section.issues.add(
            section.at("period_seconds"),
            f"{period} is longer than the source's lookback_seconds ({lookback}), so no datapoint completes",
            "raise the source's lookback_seconds to at least twice the period, or shorten period_seconds",
        )
    return period


def _parse_scale(section: Section, *, default: float) -> float:
    scale = section.number("scale", default)
    if scale == 0:
        section.issues.add(
            section.at("scale"), "must not be 0", "remove scale (1.0) or set the factor to apply"
        )
    return scale


def _parse_stat_spec(section: Section) -> MetricStatSpec:
    namespace = section.string("namespace", max_length=255)
    metric_name = section.string("metric_name", max_length=255)
    stat = section.string("stat")
    if stat is not None and not _is_statistic(stat):
        section.issues.add(section.at("stat"), f"{stat!r} is not a CloudWatch statistic", _STAT_FIX)
    entries = section.string_map("dimensions") or []
    if len(entries) > _MAX_DIMENSIONS:
        section.issues.add(
            section.at("dimensions"),
            f"has {len(entries)} dimensions",
            f"use at most {_MAX_DIMENSIONS} dimensions",
        )
    for path, key, value in entries:
        if not 1 <= len(key) <= 255 or not 1 <= len(value) <= 1024:
            section.issues.add(
                path, "is not a valid dimension", "use a name of 1 to 255 and a value of 1 to 1024 characters"
            )
    return MetricStatSpec(
        namespace=namespace or "",
        metric_name=metric_name or "",
        stat=stat or "",
        dimensions=tuple(sorted((key, value) for _, key, value in entries)),
    )


def _is_statistic(stat: str) -> bool:
    if stat in _STANDARD_STATS or _RANGE_STAT.fullmatch(stat):
        return True
    percentile = _PERCENTILE_STAT.fullmatch(stat)
    return percentile is not None and float(percentile.group(2)) <= 100


def _parse_expression(section: Section) -> tuple[str | None, tuple[tuple[str, MetricStatSpec], ...]]:
    expression = section.string("expression", max_length=2048)
    raw = section.data.get("metrics")
    specs: list[tuple[str, MetricStatSpec]] = []
    if raw is not None and not isinstance(raw, Mapping):
        section.wrong_type(
            "metrics", raw, "a mapping of ids to metrics", "write metrics as {m1: {namespace: …}, …}"
        )
    elif raw is not None:
        for metric_id, body in raw.items():
            path = f"{section.at('metrics')}.{metric_id}"
            if not isinstance(metric_id, str) or not _EXPRESSION_ID.fullmatch(metric_id):
                section.issues.add(
                    path,
                    f"{metric_id!r} is not a valid metric id",
                    "start the id with a lower-case letter, then letters, digits or '_' (e.g. m1)",
                )
                continue
            spec_section = as_section(section.issues, path, body, STAT_KEYS)
            if spec_section is None:
                continue
            for key in ("namespace", "metric_name", "stat"):
                if not spec_section.has(key):
                    section.issues.add(
                        spec_section.at(key),
                        "is required",
                        "give every metric namespace, metric_name and stat",
                    )
            specs.append((metric_id, _parse_stat_spec(spec_section)))
    if expression is not None and isinstance(raw, Mapping):
        defined = {metric_id for metric_id, _ in specs}
        referenced = _EXPRESSION_REFERENCE.findall(_STRING_LITERAL.sub("''", expression))
        for metric_id in dict.fromkeys(referenced):
            if metric_id not in defined and metric_id not in raw:
                section.issues.add(
                    section.at("expression"),
                    f"refers to {metric_id!r}, which is not defined under metrics",
                    f"add {metric_id} under metrics, or correct the expression"
                    + (f" (defined: {', '.join(sorted(defined))})" if defined else ""),
                )
    return expression, tuple(specs)
