"""The document as a whole: version, redis, sampling and defaults, then sources, policies and checks."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from tidegauge import environment, names
from tidegauge.config.checks import check_metric_collisions, check_query_ages
from tidegauge.config.derived import parse_derived
from tidegauge.config.errors import DOCUMENT, ConfigError, ConfigIssue, Issues
from tidegauge.config.messages import describe
from tidegauge.config.model import (
    SCHEMA_VERSION,
    Config,
    Defaults,
    MetricPolicy,
    RedisSettings,
    SamplingSettings,
    producer_max_age,
    producers,
)
from tidegauge.config.object_rules import parse_objects
from tidegauge.config.policies import parse_exposure, parse_metric_entries
from tidegauge.config.schema import (
    DEFAULTS_KEYS,
    DEFAULTS_NUMBERS,
    REDIS_KEYS,
    REDIS_NUMBERS,
    SAMPLING_KEYS,
    SAMPLING_NUMBERS,
    TOP_LEVEL_KEYS,
)
from tidegauge.config.section import Section
from tidegauge.config.sources import parse_sources


def build_config(data: Any, origin: str, url_override: tuple[str, str] | None) -> Config:
    if data is None:
        raise ConfigError(
            [
                ConfigIssue(
                    field=DOCUMENT,
                    problem="the configuration is empty",
                    fix="start from shared/tidegauge/examples/config.yaml (in the tidegauge repository)",
                )
            ],
            origin,
        )
    if not isinstance(data, Mapping):
        raise ConfigError(
            [
                ConfigIssue(
                    field=DOCUMENT,
                    problem=f"expected a mapping at the top level, got {describe(data)}",
                    fix=f"write a mapping with keys: {', '.join(TOP_LEVEL_KEYS)}",
                )
            ],
            origin,
        )
    issues = Issues()
    root = Section(issues, "", data, TOP_LEVEL_KEYS)
    _check_version(root)
    redis = _parse_redis(root, url_override)
    sampling = _parse_sampling(root)
    defaults = _parse_defaults(root)
    placed_sources = parse_sources(root)
    sources = tuple(source for _, source in placed_sources)
    produced = {metric for metric, _ in producers(sources) if metric}
    entries = parse_metric_entries(root, produced)
    check_metric_collisions(issues, placed_sources)
    check_query_ages(issues, placed_sources, entries, defaults)
    derived = parse_derived(root, produced)
    exposure = parse_exposure(root, produced | set(derived))
    objects = parse_objects(root, produced | set(derived))
    if issues.items:
        raise ConfigError(issues.items, origin)
    metrics = {
        metric: MetricPolicy(
            max_age_seconds=(
                entry.max_age_seconds
                if entry.max_age_seconds is not None
                else producer_max_age(sources, defaults, metric)
            ),
            fallback=entry.fallback,
            unit=entry.unit,
            description=entry.description,
            window=entry.window,
            keep_alive_seconds=entry.keep_alive_seconds,
            last_known_good=entry.last_known_good,
        )
        for metric, (_, entry) in entries.items()
    }
    return Config(
        version=SCHEMA_VERSION,
        redis=redis,
        sampling=sampling,
        defaults=defaults,
        sources=sources,
        metrics=MappingProxyType(metrics),
        exposure=exposure,
        derived=MappingProxyType(derived),
        objects=objects,
    )


def _check_version(root: Section) -> None:
    value = root.data.get("version")
    fix = f"put `version: {SCHEMA_VERSION}` at the top of the document"
    if value is None:
        root.issues.add("version", "is required", fix)
    elif isinstance(value, bool) or not isinstance(value, int):
        root.wrong_type("version", value, "an integer", fix)
    elif value != SCHEMA_VERSION:
        root.issues.add(
            "version",
            f"unsupported schema version {value}",
            f"use version: {SCHEMA_VERSION}, the only version this tidegauge understands",
        )


def _parse_redis(root: Section, url_override: tuple[str, str] | None) -> RedisSettings:
    url_fix = (
        f"set redis.url (e.g. redis://127.0.0.1:6379/0) or the {environment.REDIS_URL} environment variable"
    )
    section = root.section("redis", REDIS_KEYS)
    if section is None:
        if root.has("redis"):  # present but not a mapping: already reported
            return RedisSettings(url=url_override[0] if url_override else "")
        section = Section(root.issues, "redis", {}, REDIS_KEYS)
    if url_override is not None:
        url: str | None = url_override[0]
        url_origin = f"value from {url_override[1]}: "
    else:
        url = section.string("url", required=True, fix=url_fix)
        url_origin = ""
    url_problem = _redis_url_problem(url) if url is not None else None
    if url_problem is not None:
        root.issues.add(
            "redis.url",
            url_origin + url_problem,
            "use redis://[user:password@]host:port/db, rediss://… for TLS, or unix:///path/to/socket",
        )
    parts = urlsplit(url) if url is not None and url_problem is None else None
    cluster = _parse_cluster(section)
    username = section.string("username")
    password_secret = section.string("password_secret", max_length=2048)
    if password_secret is not None and not (
        names.SECRET_ARN.accepts(password_secret) or names.SECRET_NAME.accepts(password_secret)
    ):
        root.issues.add(
            "redis.password_secret",
            f"{password_secret!r} is neither a Secrets Manager secret name nor a secret ARN",
            "use the secret's name (letters, digits, /_+=.@-) or its arn:aws:secretsmanager:… ARN",
        )
    tls_ca_file = section.string("tls_ca_file")
    if tls_ca_file is not None and parts is not None and parts.scheme != "rediss":
        root.issues.add(
            "redis.tls_ca_file",
            "is set but redis.url does not use TLS (rediss://)",
            "use a rediss:// URL, or remove tls_ca_file",
        )
    if username is not None and parts is not None and parts.password is None and password_secret is None:
        root.issues.add(
            "redis.username",
            "is set but no password is configured, so no AUTH would be sent",
            "set redis.password_secret, or put the password in redis.url",
        )
    return RedisSettings(
        url=url or "",
        cluster=cluster,
        username=username,
        password_secret=password_secret,
        tls_ca_file=tls_ca_file,
        **section.numbers(RedisSettings, REDIS_NUMBERS),
    )


def _redis_url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (check the port and any [IPv6] address)"
    if parts.scheme not in ("redis", "rediss", "unix"):
        return f"scheme {parts.scheme + '://' if parts.scheme else '(none)'} is not supported"
    if parts.scheme == "unix":
        return None if parts.path else "has no socket path"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        return f"database {database!r} is not a number"
    return None


def _parse_cluster(section: Section) -> bool | None:
    value = section.data.get("cluster")
    if value is None or value == "auto":
        return None
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    section.issues.add(
        section.at("cluster"),
        f"expected auto, true or false, got {describe(value)}",
        "use auto (detect), true (Redis Cluster / ElastiCache Serverless) or false (standalone)",
    )
    return None


def _parse_sampling(root: Section) -> SamplingSettings:
    section = root.section("sampling", SAMPLING_KEYS) or Section(root.issues, "sampling", {}, SAMPLING_KEYS)
    return SamplingSettings(**section.numbers(SamplingSettings, SAMPLING_NUMBERS))


def _parse_defaults(root: Section) -> Defaults:
    section = root.section("defaults", DEFAULTS_KEYS) or Section(root.issues, "defaults", {}, DEFAULTS_KEYS)
    return Defaults(**section.numbers(Defaults, DEFAULTS_NUMBERS))
