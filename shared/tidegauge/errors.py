"""The error classes every ``tidegauge`` command maps to an exit status, in one hierarchy.

A command (or the library under it) raises one of these with a message that names what failed; the
``tidegauge`` entry point prints it as ``tidegauge <command>: <message>`` (plus ``Fix: <hint>`` when the
class has one and the message does not already say), and exits with the class's ``exit_code``:
2 for a usage or configuration problem the caller must change, 1 for a failure at run time.
"""

from __future__ import annotations

from typing import ClassVar


class TidegaugeError(Exception):
    """A known failure; ``hint`` (when set) says how to fix it."""

    exit_code: ClassVar[int] = 1
    hint: ClassVar[str] = ""


class UsageError(TidegaugeError):
    """Bad arguments, flags or configuration: nothing will work until the caller changes them."""

    exit_code: ClassVar[int] = 2


class OperationFailed(TidegaugeError):
    """The command was right but could not be carried out now (a backend unreachable, an AWS error)."""

    exit_code: ClassVar[int] = 1


def explain(error: TidegaugeError) -> str:
    """The error's message, with ``Fix: <hint>`` added when the class has a hint the message lacks."""
    message = str(error) or type(error).__name__
    if error.hint and "Fix:" not in message:
        message = f"{message.rstrip('. ')}. Fix: {error.hint}"
    return message
