"""One collector function on its schedule, outside Lambda: the demo's stand-in for EventBridge + Lambda.

Run as ``python -m tidegauge.demo.collector_process --handler functions/collect_sqs/app.py --every 12``:
it imports the handler file by path, exactly the code Lambda runs, and invokes it every ``--every``
seconds with an EventBridge scheduled event and a local context whose remaining time counts down
from ``--every`` seconds, like a function whose timeout equals its schedule. Each invocation samples
in rounds until its deadline (the collectors' own sampling loop). Powertools' JSON logs and EMF
metrics go to this process's standard output; the demo sends them to ``collectors.log``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

logger = logging.getLogger(__name__)

DEMO_ACCOUNT = "123456789012"
"""The account moto answers with."""


@dataclass
class LocalContext:
    """The parts of a Lambda context that Powertools and the collectors read."""

    function_name: str
    timeout_seconds: float
    region: str
    clock: Callable[[], float] = time.monotonic
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{DEMO_ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """What Lambda's context answers: milliseconds left until the function's timeout."""
        return max(0, int((self.started_at + self.timeout_seconds - self.clock()) * 1000))


def scheduled_event(rule_name: str, region: str, now: datetime.datetime | None = None) -> dict[str, Any]:
    """An EventBridge ``Scheduled Event`` as the every-minute rule sends it (see tests/events)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": DEMO_ACCOUNT,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{DEMO_ACCOUNT}:rule/{rule_name}"],
        "detail": {},
    }


def load_handler(path: Path) -> ModuleType:
    """Import a function's ``app.py`` by path under a name of its own (every handler file is ``app``)."""
    name = f"tidegauge_demo_{path.parent.name}_app"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a handler from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def invoke_on_schedule(
    handler: Callable[[dict[str, Any], Any], Any],
    *,
    function_name: str,
    every_seconds: float,
    region: str,
    invocations: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Invoke ``handler`` every ``every_seconds`` (aligned to the first start); returns the count made.

    A failing invocation is logged and the schedule goes on, as EventBridge keeps invoking a function
    whose last run failed.
    """
    started = clock()
    count = 0
    while invocations is None or count < invocations:
        context = LocalContext(function_name=function_name, timeout_seconds=every_seconds, region=region)
        event = scheduled_event(f"{function_name}-schedule", region)
        try:
            result = handler(event, context)
            print(json.dumps({"invocation": count, "function": function_name, "result": result}), flush=True)
        except Exception:  # the next scheduled invocation runs anyway
            logger.exception("invocation %d of %s failed", count, function_name)
        count += 1
        sleep(max(0.0, started + count * every_seconds - clock()))
    return count


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--handler", required=True, type=Path, help="path of the function's app.py")
    parser.add_argument("--every", required=True, type=float, help="seconds between invocations")
    parser.add_argument("--function-name", required=True, help="the function's name, for the context")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        module = load_handler(args.handler)
        invoke_on_schedule(
            module.lambda_handler,
            function_name=args.function_name,
            every_seconds=args.every,
            region=args.region,
        )
    except KeyboardInterrupt:
        # An invocation cut short here may have flushed no metrics: Powertools warns about that above.
        print(json.dumps({"function": args.function_name, "stopped": "by the demo"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
