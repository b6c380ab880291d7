"""The declarative tidegauge configuration: schema, presets and validation.

Collectors (from an SSM parameter) and the server (from a file) load the same YAML or JSON document.
Every problem is collected and reported at once, each naming the field and how to fix it, so a bad
deployment fails fast with one readable message instead of one error per attempt.

Layout: ``model`` (the frozen values everything else imports), ``presets``, ``errors``, ``loader``
(text or file to a mapping, and the two entry points), ``schema`` (each section's keys, stated once),
``section`` (the typed reader), ``document``, ``sources``, ``queries``, ``policies``, ``signals``
(fallback, window, keep-alive) and ``derived`` (mapping to values), ``checks`` (rules across the
document), ``messages`` (shared wording) and ``default.yaml`` (the built-in demo document).

The validator is hand-written rather than a schema library: pydantic would add its own import, a
multiple of this whole package's, to every Lambda cold start, and its ~9 MB to the layer and the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidegauge.config.errors import ConfigError, ConfigIssue
from tidegauge.config.loader import load_config, parse_config
from tidegauge.config.model import (
    DEFAULT_SQS_METRIC,
    RESERVED_SQS_LABELS,
    SCHEMA_VERSION,
    CloudWatchQuery,
    CloudWatchSource,
    Config,
    Defaults,
    DerivedMetric,
    ExposureDecision,
    ExposureRule,
    Fallback,
    Labels,
    LastKnownGood,
    MetricPolicy,
    MetricStatSpec,
    RedisSettings,
    SamplingSettings,
    Source,
    SqsSource,
    Window,
)
from tidegauge.config.objects import ObjectRule, ResourceType, Template
from tidegauge.config.presets import PRESETS, Preset

if TYPE_CHECKING:
    DEFAULT_CONFIG_YAML: str
    """The built-in configuration of ``tidegauge demo`` and of the server without ``--config``."""
else:

    def __getattr__(name: str) -> str:
        """``DEFAULT_CONFIG_YAML``, read on first use (importlib.resources costs a cold start ~20 ms)."""
        if name != "DEFAULT_CONFIG_YAML":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import resources

        text = (resources.files(__name__) / "default.yaml").read_text(encoding="utf-8")
        globals()[name] = text
        return text


__all__ = [
    "DEFAULT_CONFIG_YAML",
    "DEFAULT_SQS_METRIC",
    "PRESETS",
    "RESERVED_SQS_LABELS",
    "SCHEMA_VERSION",
    "CloudWatchQuery",
    "CloudWatchSource",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Defaults",
    "DerivedMetric",
    "ExposureDecision",
    "ExposureRule",
    "Fallback",
    "Labels",
    "LastKnownGood",
    "MetricPolicy",
    "MetricStatSpec",
    "ObjectRule",
    "Preset",
    "RedisSettings",
    "ResourceType",
    "SamplingSettings",
    "Source",
    "SqsSource",
    "Template",
    "Window",
    "load_config",
    "parse_config",
]
