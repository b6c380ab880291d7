"""Reading one mapping of the document: typed getters that record an issue and carry on.

Every getter that finds a missing or invalid value adds a :class:`~tidegauge.config.errors.ConfigIssue`
and returns None (or the default), so validation continues and every problem is reported at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from tidegauge import names
from tidegauge.config.errors import Issues
from tidegauge.config.messages import constraint, describe, format_number, type_fix, unknown
from tidegauge.config.model import Labels
from tidegauge.config.schema import Range


class Section:
    """One mapping of the document at a field path, read key by key with type and range checks.

    Getters record an issue and return None (or the default) for a missing or invalid value, so that
    validation continues and every problem is reported.
    """

    def __init__(self, issues: Issues, path: str, data: Mapping[Any, Any], allowed: Sequence[str]) -> None:
        self.issues = issues
        self.path = path
        self.data = data
        for key in data:
            if not isinstance(key, str):
                issues.add(
                    self.at(str(key)),
                    f"key {key!r} is {describe(key)}, not a string",
                    f"use one of the allowed keys: {', '.join(allowed)}",
                )
            elif key not in allowed:
                issues.add(self.at(key), unknown("key", key, allowed), f"use one of: {', '.join(allowed)}")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def wrong_type(self, key: str, value: Any, expected: str, fix: str = "") -> None:
        self.issues.add(
            self.at(key),
            f"expected {expected}, got {describe(value)}",
            fix or type_fix(key, value, expected),
        )

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        grammar: names.Grammar | None = None,
        max_length: int | None = None,
        fix: str = "",
    ) -> str | None:
        """The string at ``key``; ``fix`` (by default the grammar's) is the fix of every issue with it."""
        fix = fix or (grammar.fix if grammar is not None else "")
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", fix or f"set {key}")
            return None
        if not isinstance(value, str):
            self.wrong_type(key, value, "a string")
            return None
        if not value.strip():
            self.issues.add(self.at(key), "is empty", fix or f"set {key} or remove it")
            return None
        if max_length is not None and len(value) > max_length:
            self.issues.add(self.at(key), f"is longer than {max_length} characters", fix or f"shorten {key}")
            return None
        if grammar is not None and not grammar.accepts(value):
            self.issues.add(self.at(key), f"{value!r} is not a valid {grammar.what}", fix)
            return None
        return value

    def _number(
        self,
        key: str,
        *,
        integral: bool,
        required: bool = False,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        hint: str = "",
    ) -> float | None:
        value = self.data.get(key)
        expected = "an integer" if integral else "a number"
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", f"set {key} to {expected}")
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (integral and isinstance(value, float))
        ):
            self.wrong_type(key, value, expected)
            return None
        number = float(value)
        if not math.isfinite(number):
            self.issues.add(
                self.at(key), f"must be a finite number, got {value!r}", f"set {key} to {expected}"
            )
            return None
        if (
            (minimum is not None and number < minimum)
            or (above is not None and number <= above)
            or (maximum is not None and number > maximum)
        ):
            limits = constraint(minimum, above, maximum)
            self.issues.add(
                self.at(key),
                f"must be {limits}, got {format_number(number)}",
                f"set {key} to a value {limits}" + (f" ({hint})" if hint else ""),
            )
            return None
        return number

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        hint: str = "",
    ) -> float:
        value = self._number(key, integral=False, minimum=minimum, above=above, maximum=maximum, hint=hint)
        return default if value is None else value

    def optional_number(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        return self._number(
            key, integral=False, required=required, minimum=minimum, above=above, maximum=maximum
        )

    def integer(
        self,
        key: str,
        default: int,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        hint: str = "",
    ) -> int:
        value = self._number(key, integral=True, minimum=minimum, above=above, maximum=maximum, hint=hint)
        return default if value is None else int(value)

    def numbers(self, value_class: Any, ranges: Mapping[str, Range]) -> dict[str, Any]:
        """The number fields ``ranges`` names, each read as its field's type with the field's default."""
        fields = {field.name: field for field in dataclasses.fields(value_class)}
        values: dict[str, Any] = {}
        for key, bounds in ranges.items():
            default = fields[key].default
            if isinstance(default, bool) or not isinstance(default, int | float):
                raise TypeError(f"{value_class.__name__}.{key} is not a number field with a default")
            limits = {"minimum": bounds.minimum, "above": bounds.above, "maximum": bounds.maximum}
            if fields[key].type == "int" and isinstance(default, int):
                values[key] = self.integer(key, default, **limits, hint=bounds.hint)
            else:
                values[key] = self.number(key, default, **limits, hint=bounds.hint)
        return values

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.wrong_type(key, value, "a boolean (true or false)")
            return default
        return value

    def section(
        self, key: str, allowed: Sequence[str], *, required: bool = False, fix: str = ""
    ) -> Section | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", fix or f"add a {key} section")
            return None
        return as_section(self.issues, self.at(key), value, allowed)

    def items(self, key: str, *, required: bool = False, fix: str = "") -> list[tuple[str, Any]] | None:
        """The elements of a list as (field path, value) pairs; None if absent or not a list."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", fix or f"add a {key} list")
            return None
        if not isinstance(value, list):
            self.wrong_type(key, value, "a list", fix)
            return None
        if not value and required:
            self.issues.add(self.at(key), "is empty", fix or f"add at least one entry to {key}")
        return [(f"{self.at(key)}[{index}]", item) for index, item in enumerate(value)]

    def strings(self, key: str, *, required: bool = False, fix: str = "") -> list[tuple[str, str]] | None:
        """The string elements of a list as (field path, value) pairs; other elements are issues."""
        elements = self.items(key, required=required, fix=fix)
        if elements is None:
            return None
        result: list[tuple[str, str]] = []
        for path, item in elements:
            if isinstance(item, str) and item.strip():
                result.append((path, item))
            elif isinstance(item, str):
                self.issues.add(path, "is empty", f"remove the empty entry from {key}")
            else:
                self.issues.add(
                    path, f"expected a string, got {describe(item)}", type_fix(key, item, "a string")
                )
        return result

    def string_map(self, key: str) -> list[tuple[str, str, str]] | None:
        """The string entries of a mapping as (field path, key, value); other entries are issues."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.wrong_type(
                key, value, "a mapping of strings to strings", f"write {key} as {{name: value, ...}}"
            )
            return None
        result: list[tuple[str, str, str]] = []
        for entry_key, entry_value in value.items():
            path = f"{self.at(key)}.{entry_key}"
            if not isinstance(entry_key, str):
                self.issues.add(
                    path, f"key {entry_key!r} is {describe(entry_key)}, not a string", "quote the key"
                )
            elif not isinstance(entry_value, str):
                self.issues.add(
                    path,
                    f"expected a string, got {describe(entry_value)}",
                    type_fix(entry_key, entry_value, "a string"),
                )
            else:
                result.append((path, entry_key, entry_value))
        return result


def as_section(issues: Issues, path: str, value: Any, allowed: Sequence[str]) -> Section | None:
    if not isinstance(value, Mapping):
        issues.add(
            path,
            f"expected a mapping, got {describe(value)}",
            f"write it as a mapping with keys: {', '.join(allowed)}",
        )
        return None
    return Section(issues, path, value, allowed)


def parse_labels(section: Section, *, reserved: Sequence[str] = (), reserved_fix: str = "") -> Labels:
    entries = section.string_map("labels")
    if entries is None:
        return ()
    for path, key, value in entries:
        if key in reserved:
            section.issues.add(
                path,
                f"overrides the reserved label {key!r}",
                reserved_fix,
            )
        elif not names.LABEL_KEY.accepts(key):
            section.issues.add(path, f"{key!r} is not a valid label key", names.LABEL_KEY.fix)
        elif not names.LABEL_VALUE.accepts(value):
            section.issues.add(path, f"{value!r} is not a valid label value", names.LABEL_VALUE.fix)
    return tuple(sorted((key, value) for _, key, value in entries))
