"""The ``derived:`` section: metrics defined by an expression over other metrics (docs/signals.md).

Each expression is parsed here, at load time, so a typo fails the deployment with its column and what
was expected, and every metric it reads must be one a source produces (derived metrics do not nest).
"""

from __future__ import annotations

from collections.abc import Mapping

from tidegauge import names
from tidegauge.config.messages import did_you_mean
from tidegauge.config.model import DerivedMetric
from tidegauge.config.schema import DERIVED_KEYS
from tidegauge.config.section import Section, as_section

EXAMPLE = 'max(sqs_messages{queue="orders"} / 100, aurora_cpu_percent{cluster="orders-db"} / 70)'


def parse_derived(root: Section, produced: set[str]) -> dict[str, DerivedMetric]:
    """Derived metric name -> definition; each name new, each expression valid over produced metrics."""
    raw = root.data.get("derived")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        root.wrong_type(
            "derived",
            raw,
            "a mapping of metric names to definitions",
            f"write derived as {{name: {{expression: '{EXAMPLE}'}}}}",
        )
        return {}
    # Imported here: only a document with derived metrics needs the expression parser.
    from tidegauge.expressions import ExpressionError, parse_expression, selectors_of

    result: dict[str, DerivedMetric] = {}
    for name, body in raw.items():
        path = f"derived.{name}"
        if not isinstance(name, str) or not names.METRIC_NAME.accepts(name):
            root.issues.add(path, f"{name!r} is not a valid metric name", names.METRIC_NAME.fix)
            continue
        if name in produced:
            root.issues.add(
                path,
                f"a source already produces metric {name!r}",
                "give the derived metric a name of its own",
            )
        section = as_section(
            root.issues, path, {"expression": body} if isinstance(body, str) else body, DERIVED_KEYS
        )
        if section is None:
            continue
        expression = section.string(
            "expression", required=True, max_length=4096, fix=f"write an expression, e.g. {EXAMPLE}"
        )
        unit = section.string("unit", max_length=64)
        description = section.string("description", max_length=1024)
        if expression is None:
            continue
        try:
            node = parse_expression(expression)
        except ExpressionError as error:
            root.issues.add(
                section.at("expression"),
                f"{error} in {expression!r}",
                f"see docs/signals.md for the grammar, e.g. {EXAMPLE}",
            )
            continue
        for selector in selectors_of(node):
            if selector.metric in raw:
                root.issues.add(
                    section.at("expression"),
                    f"reads the derived metric {selector.metric!r}",
                    "derived metrics read collected metrics only: repeat its expression instead",
                )
            elif selector.metric not in produced:
                root.issues.add(
                    section.at("expression"),
                    f"no source produces metric {selector.metric!r}{did_you_mean(selector.metric, produced)}",
                    f"use a metric a source produces: {', '.join(sorted(produced)) or 'none yet'}",
                )
        result[name] = DerivedMetric(expression=expression, unit=unit, description=description)
    return result
