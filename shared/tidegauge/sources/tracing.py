"""X-Ray tracing of a collector handler, only when it is switched on (it costs ~100 ms of cold import).

Powertools' ``Tracer`` imports ``aws_xray_sdk`` even when tracing is disabled, so the handlers build
one only when :func:`tracing_enabled` says so (the template's ``Tracing`` parameter sets
``POWERTOOLS_TRACE_DISABLED``), and :func:`traced` leaves the handler undecorated otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
"""Powertools' switch; the template sets it to ``true`` unless ``Tracing`` is ``Active``."""
_LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
_EMULATORS = ("AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE")
_TRUE = frozenset({"1", "true", "yes", "on", "y"})

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Powertools' own rule: in Lambda (not an emulator) and not disabled by ``POWERTOOLS_TRACE_DISABLED``."""
    env = os.environ if environ is None else environ
    if env.get(TRACE_DISABLED, "false").strip().lower() in _TRUE:
        return False
    return bool(env.get(_LAMBDA_TASK_ROOT)) and not any(env.get(name) for name in _EMULATORS)


def optional_tracer(environ: Mapping[str, str] | None = None) -> Tracer | None:
    """A Powertools ``Tracer`` (no auto-patching) when tracing is enabled, else None (nothing imported).

    No auto-patching: API calls on worker threads have no X-Ray context and thousands of them would
    overflow the segment; the handler segment shows the invocation, annotated with its trigger.
    """
    if not tracing_enabled(environ):
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(auto_patch=False)


def traced(tracer: Tracer | None) -> Callable[[Handler], Handler]:
    """``tracer.capture_lambda_handler`` when there is a tracer; otherwise the handler as it is."""

    def decorate(handler: Handler) -> Handler:
        if tracer is None:
            return handler
        return cast(Handler, tracer.capture_lambda_handler(handler))

    return decorate
