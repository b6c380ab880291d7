"""Wording shared by the validators: how a value is described, "did you mean", ranges and numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def describe(value: Any) -> str:
    """A value's YAML type, with the value itself when short, for 'expected …, got …' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    name = {int: "integer", float: "number", str: "string"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{name} {text}" if len(text) <= 40 else f"{name} {text[:37]}..."


def type_fix(key: str, value: Any, expected: str) -> str:
    if expected == "a string":
        if isinstance(value, bool):
            return f'quote it, e.g. {key}: "{str(value).lower()}" (YAML reads yes/no/on/off as booleans)'
        if isinstance(value, int | float):
            return f'quote it, e.g. {key}: "{value}"'
    return f"write {key} as {expected}"


def unknown(what: str, name: str, allowed: Iterable[str]) -> str:
    return f"unknown {what} {name!r}{did_you_mean(name, allowed)}"


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    import difflib  # only a document with a mistake needs it: kept out of every cold start (~1 ms)

    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_number(number: float) -> str:
    return str(int(number)) if number == int(number) else repr(number)


def constraint(minimum: float | None, above: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {format_number(minimum)} and {format_number(maximum)}"
    parts = []
    if minimum is not None:
        parts.append(f"at least {format_number(minimum)}")
    if above is not None:
        parts.append(f"greater than {format_number(above)}")
    if maximum is not None:
        parts.append(f"at most {format_number(maximum)}")
    return " and ".join(parts)
