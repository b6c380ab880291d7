"""What a bad configuration reports: one issue per problem, all raised together as one ConfigError."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from tidegauge.errors import UsageError

DOCUMENT: Final = "(document)"
"""The field path of a problem with the document as a whole (unreadable, not a mapping, bad syntax)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One problem in a configuration document: where it is, what is wrong, what to do."""

    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}. Fix: {self.fix}"


class ConfigError(UsageError, ValueError):
    """An invalid configuration; ``errors`` lists every issue found, ``field``/``fix`` are the first's."""

    def __init__(self, errors: Iterable[ConfigIssue], origin: str = "<string>") -> None:
        self.errors: tuple[ConfigIssue, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("ConfigError needs at least one issue")
        self.origin = origin
        self.field = self.errors[0].field
        self.problem = self.errors[0].problem
        self.fix = self.errors[0].fix
        super().__init__("\n".join(f"{origin}: {issue}" for issue in self.errors))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[ConfigIssue, ...], str]]:
        return type(self), (self.errors, self.origin)


class Issues:
    """The issues collected while validating one document."""

    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, field: str, problem: str, fix: str) -> None:
        self.items.append(ConfigIssue(field=field, problem=problem, fix=fix))
