"""The grammar of every name tidegauge accepts, stated once: metric names, label keys and values,
Kubernetes namespaces, AWS regions, accounts and ARNs.

Each :class:`Grammar` is a pattern matched against the whole string (``fullmatch``, so a trailing
newline is never part of a name), a length limit, and the fix a message gives. The configuration,
the series model, label selectors and the server's routing all use these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Grammar:
    """One kind of name: the pattern it must match whole, its length limit and how to fix a bad one."""

    what: str
    pattern: re.Pattern[str]
    max_length: int
    fix: str

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is such a name: at most ``max_length`` characters matching ``pattern`` whole."""
        return len(text) <= self.max_length and self.pattern.fullmatch(text) is not None


MAX_METRIC_NAME_LENGTH: Final = 100
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"

METRIC_NAME: Final = Grammar(
    what="metric name",
    pattern=re.compile(r"[a-z_][a-z0-9_]{0,99}"),
    max_length=MAX_METRIC_NAME_LENGTH,
    fix="use lower-case letters, digits and '_', starting with a letter or '_' (at most 100)",
)
LABEL_KEY: Final = Grammar(
    what="label key",
    pattern=re.compile(rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}"),
    max_length=317,
    fix="use a Kubernetes label key: letters, digits, '-', '_', '.', at most 63, optional dns/ prefix",
)
LABEL_VALUE: Final = Grammar(
    what="label value",
    pattern=re.compile(rf"({_LABEL_NAME})?"),
    max_length=63,
    fix=(
        "use a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting and ending "
        "with a letter or digit (HPA selectors can only match such values)"
    ),
)
NAMESPACE: Final = Grammar(
    what="Kubernetes namespace name",
    pattern=re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"),
    max_length=63,
    fix="use lower-case letters, digits and '-' (at most 63), or a glob such as team-*",
)
REGION: Final = Grammar(
    what="AWS region",
    pattern=re.compile(r"[a-z]{2}(-[a-z]+)+-\d+"),
    max_length=32,
    fix="use an AWS region code such as eu-west-1",
)
ACCOUNT: Final = Grammar(
    what="AWS account id",
    pattern=re.compile(r"\d{12}"),
    max_length=12,
    fix='use the 12-digit account id in quotes, e.g. "123456789012"',
)
ROLE_ARN: Final = Grammar(
    what="IAM role ARN",
    pattern=re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}"),
    max_length=2048,
    fix="use arn:aws:iam::<12-digit account>:role/<name>, or remove it to use the function's role",
)
SECRET_ARN: Final = Grammar(
    what="Secrets Manager secret ARN",
    pattern=re.compile(
        r"arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
    ),
    max_length=2048,
    fix="use the secret's name (letters, digits, /_+=.@-) or its arn:aws:secretsmanager:… ARN",
)
SECRET_NAME: Final = Grammar(
    what="Secrets Manager secret name",
    pattern=re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}"),
    max_length=512,
    fix=SECRET_ARN.fix,
)
