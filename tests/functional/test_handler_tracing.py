"""X-Ray tracing of the handlers: built only when switched on, so a cold start without it skips the SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tidegauge.sources.tracing import optional_tracer, traced, tracing_enabled

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("collect_sqs", "collect_cloudwatch")
PROBE = """
import json, sys, app
depth, handler = 0, app.lambda_handler
while hasattr(handler, "__wrapped__"):
    depth, handler = depth + 1, handler.__wrapped__
xray = "aws_xray_sdk" in sys.modules
print(json.dumps({"xray": xray, "tracer": app.tracer is not None, "wrappers": depth}))
"""


def import_handler(function: str, **environment: str) -> dict[str, object]:
    """Import ``functions/<function>/app.py`` in a fresh interpreter with the layer on the path (Lambda)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS_", "AWS_"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "shared")]),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": function,
        "LAMBDA_TASK_ROOT": "/var/task",
        **environment,
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT / "functions" / function,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_without_tracing_never_imports_the_xray_sdk(function: str) -> None:
    # GIVEN Lambda's environment with tracing switched off, as the template's default sets it
    # WHEN the handler module is imported cold
    imported = import_handler(function, POWERTOOLS_TRACE_DISABLED="true")
    # THEN no Tracer is built, the X-Ray SDK is not even imported, and only Logger and Metrics wrap it
    assert imported == {"xray": False, "tracer": False, "wrappers": 2}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_with_tracing_captures_the_invocation(function: str) -> None:
    # GIVEN Lambda's environment with tracing on (the template's CollectorTracing=Active)
    imported = import_handler(function, POWERTOOLS_TRACE_DISABLED="false")
    # THEN the handler has a Tracer, and capture_lambda_handler wraps it between Logger and Metrics
    assert imported == {"xray": True, "tracer": True, "wrappers": 3}


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_follows_powertools_rule(environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(environ) is enabled


def test_no_tracer_leaves_the_handler_as_it_is() -> None:
    def handler() -> str:
        return "answer"

    assert optional_tracer({}) is None
    assert traced(None)(handler) is handler
