"""The per-metric serving options beyond max age: ``fallback`` (a fixed value and/or last known good),
``window`` and ``keep_alive_seconds``, read from one ``metrics.<name>`` entry."""

from __future__ import annotations

from tidegauge.config.messages import did_you_mean
from tidegauge.config.model import WINDOW_FUNCTIONS, Fallback, LastKnownGood, Window
from tidegauge.config.schema import FALLBACK_KEYS, FALLBACK_MODES, WINDOW_KEYS
from tidegauge.config.section import Section

MAX_WINDOW_SECONDS = 86_400.0
"""A window reads at most a day of history: the store keeps ``history_length`` points per series."""


def parse_fallback(section: Section) -> tuple[Fallback | None, LastKnownGood | None]:
    """``fallback:``: mode ``value`` (default; value + after_seconds) or ``last_known_good``
    (max_age_seconds, with an optional fixed value + after_seconds for after its limit)."""
    fallback = section.section("fallback", FALLBACK_KEYS)
    if fallback is None:
        return None, None
    mode = fallback.string("mode") or "value"
    if mode not in FALLBACK_MODES:
        fallback.issues.add(
            fallback.at("mode"),
            f"unknown fallback mode {mode!r}{did_you_mean(mode, FALLBACK_MODES)}",
            "use mode: value (a fixed value) or mode: last_known_good (with max_age_seconds)",
        )
        return None, None
    if mode == "value":
        if fallback.has("max_age_seconds"):
            fallback.issues.add(
                fallback.at("max_age_seconds"),
                "is only used with mode: last_known_good",
                "add mode: last_known_good, or remove max_age_seconds",
            )
        return _fixed(fallback, required=True), None
    limit = fallback.optional_number("max_age_seconds", required=True, above=0)
    fixed = _fixed(fallback, required=fallback.has("value") or fallback.has("after_seconds"))
    return fixed, (LastKnownGood(max_age_seconds=limit) if limit is not None else None)


def _fixed(fallback: Section, *, required: bool) -> Fallback | None:
    if not required:
        return None
    value = fallback.optional_number("value", required=True, minimum=-9.2e15, maximum=9.2e15)
    after = fallback.optional_number("after_seconds", required=True, minimum=0)
    if value is None or after is None:
        return None
    return Fallback(value=value, after_seconds=after)


def parse_window(section: Section) -> Window | None:
    """``window: {seconds, function}``: the function of each series' history served instead of its value."""
    window = section.section("window", WINDOW_KEYS)
    if window is None:
        return None
    seconds = window.optional_number("seconds", required=True, above=0, maximum=MAX_WINDOW_SECONDS)
    function = window.string("function", required=True, fix=f"use one of: {', '.join(WINDOW_FUNCTIONS)}")
    if function is not None and function not in WINDOW_FUNCTIONS:
        window.issues.add(
            window.at("function"),
            f"unknown window function {function!r}{did_you_mean(function, WINDOW_FUNCTIONS)}",
            f"use one of: {', '.join(WINDOW_FUNCTIONS)}",
        )
        return None
    if seconds is None or function is None:
        return None
    return Window(seconds=seconds, function=function)


def parse_keep_alive(section: Section) -> float | None:
    """``keep_alive_seconds``: how long a series that was non-zero reads at least 1."""
    return section.optional_number("keep_alive_seconds", above=0, maximum=MAX_WINDOW_SECONDS)
