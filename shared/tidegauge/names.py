"""The grammar of every name tidegauge accepts, stated once: metric names, label keys and values,
Kubernetes namespaces, AWS regions, accounts, ARNs, and SQS queue names and URLs.

Each :class:`Grammar` holds a pattern that checks the whole string, length included (it ends in
``\\Z``, so ``match`` and ``fullmatch`` agree and a trailing newline is never part of a name; only a
stored label value is free text), the length limit it enforces, and the fix a message gives. The
configuration, the series model and label selectors use these; the server's external-metrics path
accepts :data:`SERIES_METRIC_NAME` (through ``tidegauge.model.METRIC_NAME_PATTERN``).

The document and selectors use Kubernetes' grammar; the store keeps a superset of it (``SERIES_*``),
so that every name a document allows can be stored and served, with the same length limits.

Limits: label keys and values are Kubernetes' (name and value at most 63, DNS-subdomain prefix at most
253), because the HPA can only select series whose labels are valid Kubernetes labels; only a stored
label value may be longer (256), see :data:`SERIES_LABEL_VALUE`. Metric names
are at most 100 characters everywhere: the document has always capped them there and it is the only
producer of metric names, so the store and the server accept exactly what a source can write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit


class Grammar:
    """One kind of name: a pattern that checks the whole string, its length limit, and how to fix it.

    Not a dataclass, and the pattern is compiled on first use: every Lambda cold start imports all of
    these but a collector uses only a few, and compiling them all would add about 3 ms to its import.
    Treat it as a frozen value.
    """

    __slots__ = ("_compiled", "fix", "max_length", "source", "what")

    def __init__(self, what: str, source: str, max_length: int, fix: str) -> None:
        self.what = what
        self.source = source
        self.max_length = max_length
        self.fix = fix
        self._compiled: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"Grammar({self.what!r}, max_length={self.max_length})"

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled pattern; ``match`` suffices (it ends in ``\\Z`` and bounds the length)."""
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is such a name (the pattern enforces ``max_length`` itself)."""
        pattern = self._compiled if self._compiled is not None else self.pattern
        return pattern.match(text) is not None


def _grammar(what: str, body: str, max_length: int, fix: str, *, min_length: int = 1) -> Grammar:
    """A grammar whose pattern is ``body`` matched whole, at ``min_length`` to ``max_length`` characters."""
    return Grammar(what, rf"(?=(?s:.){{{min_length},{max_length}}}\Z)(?:{body})\Z", max_length, fix)


MAX_METRIC_NAME_LENGTH: Final = 100
MAX_LABEL_NAME_LENGTH: Final = 63
MAX_LABEL_PREFIX_LENGTH: Final = 253
MAX_LABEL_VALUE_LENGTH: Final = 63
MAX_SERIES_LABEL_VALUE_LENGTH: Final = 256

_LABEL_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"

METRIC_NAME: Final = _grammar(
    "metric name",
    r"[a-z_][a-z0-9_]*",
    MAX_METRIC_NAME_LENGTH,
    "use lower-case letters, digits and '_', starting with a letter or '_' "
    f"(at most {MAX_METRIC_NAME_LENGTH})",
)
"""A metric name a configuration document may give (what sources produce and the HPA names)."""

SERIES_METRIC_NAME: Final = _grammar(
    "metric name",
    r"[A-Za-z_][A-Za-z0-9_.:-]*",
    MAX_METRIC_NAME_LENGTH,
    f"use 1-{MAX_METRIC_NAME_LENGTH} characters of letters, digits, '_', '.', ':' or '-', "
    "starting with a letter or '_'",
)
"""A metric name the store keeps and the server's path accepts: every :data:`METRIC_NAME`, and the
Redis-hash-tag- and path-segment-safe names around them (an unknown one is then simply not found)."""

LABEL_NAME: Final = _grammar(
    "label name",
    _LABEL_NAME,
    MAX_LABEL_NAME_LENGTH,
    f"use at most {MAX_LABEL_NAME_LENGTH} letters, digits, '-', '_' or '.', starting and ending with a "
    "letter or digit",
)
"""The name part of a label key (after the optional ``prefix/``)."""

DNS_SUBDOMAIN: Final = _grammar(
    "DNS subdomain",
    _DNS_SUBDOMAIN,
    MAX_LABEL_PREFIX_LENGTH,
    f"use at most {MAX_LABEL_PREFIX_LENGTH} lower-case letters, digits, '-' and '.', each part starting "
    "and ending with a letter or digit",
)
"""The optional prefix of a label key, before its ``/``."""

LABEL_KEY: Final = _grammar(
    "label key",
    rf"(?:(?=[^/]{{1,{MAX_LABEL_PREFIX_LENGTH}}}/){_DNS_SUBDOMAIN}/)?(?=[^/]{{1,{MAX_LABEL_NAME_LENGTH}}}\Z)"
    + _LABEL_NAME,
    MAX_LABEL_PREFIX_LENGTH + 1 + MAX_LABEL_NAME_LENGTH,
    f"use a Kubernetes label key: letters, digits, '-', '_', '.', at most {MAX_LABEL_NAME_LENGTH}, "
    "optional dns/ prefix",
)
"""A label key a document sets or a selector names: Kubernetes' ``[dns-subdomain/]name``."""

SERIES_LABEL_KEY: Final = _grammar(
    "label key",
    rf"(?:(?=[^/]{{1,{MAX_LABEL_PREFIX_LENGTH}}}/)[A-Za-z0-9][-A-Za-z0-9_.]*/)?"
    rf"(?=[^/]{{1,{MAX_LABEL_NAME_LENGTH}}}\Z)[A-Za-z0-9_][-A-Za-z0-9_.]*",
    MAX_LABEL_PREFIX_LENGTH + 1 + MAX_LABEL_NAME_LENGTH,
    LABEL_KEY.fix,
)
"""A label key the store keeps: the same lengths as :data:`LABEL_KEY`, a looser alphabet (any case in
the prefix, ``_`` and a trailing ``-``/``.``), so every key the document allows is one; series keyed
otherwise are stored but no selector can name them."""

LABEL_VALUE: Final = _grammar(
    "label value",
    f"(?:{_LABEL_NAME})?",
    MAX_LABEL_VALUE_LENGTH,
    f"use a Kubernetes label value: at most {MAX_LABEL_VALUE_LENGTH} letters, digits, '-', '_' or '.', "
    "starting and ending with a letter or digit (HPA selectors can only match such values)",
    min_length=0,
)
"""A label value a document sets or a selector names (empty allowed, as in Kubernetes)."""

SERIES_LABEL_VALUE: Final = _grammar(
    "series label value",
    r"(?s:.)*",
    MAX_SERIES_LABEL_VALUE_LENGTH,
    f"use a string of at most {MAX_SERIES_LABEL_VALUE_LENGTH} characters",
    min_length=0,
)
"""A label value the store keeps: any text up to 256 characters. Wider than :data:`LABEL_VALUE` because
collectors copy values from AWS (an SQS queue name may have 80 characters); such a series is served
(summed, or selected by its other labels) though no selector can name that value."""

NAMESPACE: Final = _grammar(
    "Kubernetes namespace name",
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?",
    63,
    "use lower-case letters, digits and '-' (at most 63), or a glob such as team-*",
)
REGION: Final = _grammar(
    "AWS region", r"[a-z]{2}(?:-[a-z]+)+-\d+", 32, "use an AWS region code such as eu-west-1"
)
ACCOUNT: Final = _grammar(
    "AWS account id", r"\d{12}", 12, 'use the 12-digit account id in quotes, e.g. "123456789012"'
)
ROLE_ARN: Final = _grammar(
    "IAM role ARN",
    r"arn:aws(?:-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]+",
    2048,
    "use arn:aws:iam::<12-digit account>:role/<name>, or remove it to use the function's role",
)
SECRET_ARN: Final = _grammar(
    "Secrets Manager secret ARN",
    r"arn:aws(?:-[a-z]+)*:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+",
    2048,
    "use the secret's name (letters, digits, /_+=.@-) or its arn:aws:secretsmanager:… ARN",
)
SECRET_NAME: Final = _grammar("Secrets Manager secret name", r"[A-Za-z0-9/_+=.@-]+", 512, SECRET_ARN.fix)

QUEUE_NAME: Final = _grammar(
    "SQS queue name",
    r"[A-Za-z0-9_-]+(?:\.fifo)?",
    80,
    "use the queue name (at most 80 letters, digits, '-', '_', optional .fifo) or its https:// URL",
)
_SQS_HOST_REGION = re.compile(
    r"sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?"
)


@dataclass(frozen=True, slots=True)
class QueueUrl:
    """An SQS queue URL ``https://<host>/<account>/<name>``, and its region when the host names it."""

    account: str
    name: str
    region: str | None


def queue_url(url: str) -> QueueUrl | None:
    """The parts of a well-formed queue URL, or None (also for a bare queue name).

    Whitespace anywhere refuses it: ``urlsplit`` silently drops tabs and newlines, so without this check
    ``…/orders\n`` would pass here and reach SQS with its newline.
    """
    if any(character.isspace() for character in url):
        return None
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(segments) != 2
        or not ACCOUNT.accepts(segments[0])
        or not QUEUE_NAME.accepts(segments[1])
    ):
        return None
    host = _SQS_HOST_REGION.fullmatch(parts.hostname)
    return QueueUrl(segments[0], segments[1], (host.group(1) or host.group(2)) if host else None)


def queue_name(name_or_url: str) -> str:
    """The queue name a configured name or URL refers to (the URL's last path segment)."""
    if "://" not in name_or_url:
        return name_or_url
    return urlsplit(name_or_url).path.rstrip("/").rpartition("/")[2]
