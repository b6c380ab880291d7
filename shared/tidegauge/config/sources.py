"""The ``sources:`` list: SQS sources (queues by name, URL, prefix or tag) and CloudWatch sources."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from tidegauge import names
from tidegauge.config.errors import Issues
from tidegauge.config.messages import describe, unknown
from tidegauge.config.model import (
    DEFAULT_SQS_METRIC,
    RESERVED_SQS_LABELS,
    CloudWatchSource,
    Labels,
    Source,
    SqsSource,
)
from tidegauge.config.queries import parse_query
from tidegauge.config.schema import (
    CLOUDWATCH_KEYS,
    CLOUDWATCH_NUMBERS,
    QUEUES_KEYS,
    SOURCE_TYPES,
    SQS_KEYS,
    SQS_NUMBERS,
)
from tidegauge.config.section import Section, parse_labels

_SOURCE_NAME = names.Grammar(
    "source name",
    r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z",
    63,
    "use at most 63 lower-case letters, digits and '-', starting and ending alphanumeric",
)
_QUEUE_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,80}")
_MAX_TAGS = 50


class _Common(NamedTuple):
    name: str
    region: str
    account: str | None
    role_arn: str | None


def parse_sources(root: Section) -> list[tuple[int, Source]]:
    """Valid-typed sources with their index in the list (for field paths)."""
    elements = root.items(
        "sources", required=True, fix="add at least one source under sources (type: sqs or type: cloudwatch)"
    )
    result: list[tuple[int, Source]] = []
    first_with_name: dict[str, str] = {}
    for index, (path, raw) in enumerate(elements or []):
        source = _parse_source(root.issues, path, raw)
        if source is None:
            continue
        if source.name:
            if source.name in first_with_name:
                root.issues.add(
                    f"{path}.name",
                    f"duplicate source name {source.name!r}, already used by {first_with_name[source.name]}",
                    "give every source a unique name",
                )
            else:
                first_with_name[source.name] = path
        result.append((index, source))
    return result


def _parse_source(issues: Issues, path: str, raw: Any) -> Source | None:
    if not isinstance(raw, Mapping):
        issues.add(
            path,
            f"expected a mapping, got {describe(raw)}",
            "write each source as a mapping with name and type",
        )
        return None
    kind = raw.get("type")
    if kind is None:
        issues.add(f"{path}.type", "is required", "set type: sqs or type: cloudwatch")
        return None
    if kind not in SOURCE_TYPES:
        issues.add(
            f"{path}.type",
            unknown("source type", str(kind), SOURCE_TYPES)
            if isinstance(kind, str)
            else f"expected a string, got {describe(kind)}",
            "set type: sqs or type: cloudwatch",
        )
        return None
    section = Section(issues, path, raw, SQS_KEYS if kind == "sqs" else CLOUDWATCH_KEYS)
    common = _Common(
        name=section.string(
            "name",
            required=True,
            grammar=_SOURCE_NAME,
        )
        or "",
        region=section.string(
            "region",
            required=True,
            grammar=names.REGION,
        )
        or "",
        account=_parse_account(section),
        role_arn=section.string(
            "role_arn",
            grammar=names.ROLE_ARN,
        ),
    )
    return _parse_sqs(section, common) if kind == "sqs" else _parse_cloudwatch(section, common)


def _parse_account(section: Section) -> str | None:
    value = section.data.get("account")
    if isinstance(value, int) and not isinstance(value, bool):
        section.issues.add(
            section.at("account"),
            "must be a quoted string: as a number an account id loses its leading zeros",
            'quote the 12 digits, e.g. account: "012345678901"',
        )
        return None
    return section.string(
        "account",
        grammar=names.ACCOUNT,
    )


def _parse_sqs(section: Section, common: _Common) -> SqsSource:
    queues = section.section(
        "queues",
        QUEUES_KEYS,
        required=True,
        fix="add queues with names (names or URLs), prefixes and/or tags",
    )
    queue_names: list[str] = []
    prefixes: list[str] = []
    tags: Labels = ()
    if queues is not None:
        for path, name in queues.strings("names") or []:
            if _check_queue(section.issues, path, name, common) and name in queue_names:
                section.issues.add(path, f"queue {name!r} is listed twice", "remove the duplicate")
            queue_names.append(name)
        for path, prefix in queues.strings("prefixes") or []:
            if not _QUEUE_PREFIX.fullmatch(prefix):
                section.issues.add(
                    path,
                    f"{prefix!r} is not a valid queue name prefix",
                    "use at most 80 letters, digits, '-', '_' or '.'",
                )
            prefixes.append(prefix)
        tags = _parse_tags(queues)
        if not any(queues.data.get(key) for key in QUEUES_KEYS):
            section.issues.add(
                queues.path,
                "selects no queues",
                "list queue names or URLs under names, name prefixes under prefixes, and/or tags to match",
            )
    return SqsSource(
        name=common.name,
        region=common.region,
        account=common.account,
        role_arn=common.role_arn,
        queue_names=tuple(queue_names),
        queue_prefixes=tuple(prefixes),
        queue_tags=tags,
        metric=section.string("metric", grammar=names.METRIC_NAME) or DEFAULT_SQS_METRIC,
        labels=parse_labels(
            section,
            reserved=RESERVED_SQS_LABELS,
            reserved_fix="rename or remove it: queue, region, account and state are set per queue",
        ),
        max_age_seconds=section.optional_number("max_age_seconds", above=0),
        **section.numbers(SqsSource, SQS_NUMBERS),
    )


def _check_queue(issues: Issues, path: str, name: str, common: _Common) -> bool:
    """Validate a queue name or URL (and that a URL agrees with the source); True when valid."""
    if "://" not in name:
        if names.QUEUE_NAME.accepts(name):
            return True
        issues.add(path, f"{name!r} is neither a queue name nor a queue URL", names.QUEUE_NAME.fix)
        return False
    url = names.queue_url(name)
    if url is None:
        issues.add(
            path,
            f"{name!r} is not a queue URL",
            "use https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>, or just the queue name",
        )
        return False
    if url.region and common.region and url.region != common.region:
        issues.add(
            path,
            f"queue URL is in region {url.region} but the source's region is {common.region}",
            "put the queue in a source for its own region",
        )
        return False
    if common.account is not None and url.account != common.account:
        issues.add(
            path,
            f"queue URL belongs to account {url.account} but the source's account is {common.account}",
            "put the queue in a source for its own account, or correct account",
        )
        return False
    return True


def _parse_tags(queues: Section) -> Labels:
    entries = queues.string_map("tags")
    if entries is None:
        return ()
    if len(entries) > _MAX_TAGS:
        queues.issues.add(queues.at("tags"), f"has {len(entries)} tags", f"match at most {_MAX_TAGS} tags")
    for path, key, value in entries:
        if not 1 <= len(key) <= 128 or len(value) > 256:
            queues.issues.add(
                path,
                "is not a valid SQS tag",
                "use a tag key of 1 to 128 and a value of at most 256 characters",
            )
    return tuple(sorted((key, value) for _, key, value in entries))


def _parse_cloudwatch(section: Section, common: _Common) -> CloudWatchSource:
    lookback: int = section.numbers(CloudWatchSource, CLOUDWATCH_NUMBERS)["lookback_seconds"]
    elements = section.items(
        "queries", required=True, fix="add at least one query (metric stat, expression or preset)"
    )
    queries = tuple(parse_query(section.issues, path, raw, lookback) for path, raw in elements or [])
    return CloudWatchSource(
        name=common.name,
        region=common.region,
        account=common.account,
        role_arn=common.role_arn,
        lookback_seconds=lookback,
        queries=queries,
    )
