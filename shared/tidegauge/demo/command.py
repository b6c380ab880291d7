"""``tidegauge demo``: the closed autoscaling loop on embedded defaults (no AWS, no cluster, no Redis).

Starts Redis (or uses ``REDIS_URL``), moto, the API server over TLS and the two collector functions,
then steps a burst of orders through a real (moto) SQS queue while a simulated HPA reads the server
as a cluster's would. Writes ``demo.png``, ``result.json`` and the parts' logs to ``--output-dir``.
Exit status: 0 when the HPA scaled up and back down, 1 when it did not or a part failed, 2 for bad
options, 130 on Ctrl-C (143 on SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from tidegauge.demo.config import DEMO_DEPLOYMENT, DEMO_NAMESPACE
from tidegauge.demo.run import EXIT_FAILED, Demo
from tidegauge.demo.scenario import Scenario
from tidegauge.demo.stack import StackError

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "demo-output"
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="simulated seconds to run (default 600, or 480 with --short; at least 300; "
        "0 with --keep-running: no scenario, just the running stack)",
    )
    parser.add_argument(
        "--time-compression",
        type=float,
        metavar="FACTOR",
        help="simulated seconds per wall-clock second (default 5, or 12 with --short)",
    )
    parser.add_argument(
        "--short", action="store_true", help="the quick form used by the tests: 8 simulated minutes at 12x"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(DEFAULT_OUTPUT_DIR),
        metavar="DIR",
        help=f"where the chart, result.json, logs and certificates go (default {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the run, keep the stack up (quiet workload) and print a kubectl command; Ctrl-C ends",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the workload's noise (default 7)")
    parser.add_argument(
        "--derived-pressure",
        action="store_true",
        help="scale on the derived metric orders_pressure (backlog, capped by what the database takes at "
        "70 %% CPU) with a dearer database; the chart shows the backlog and the CPU",
    )
    parser.add_argument(
        "--external-backlog",
        action="store_true",
        help="read the queue backlog as an External metric (default: as the Object metric of Deployment "
        f"{DEMO_NAMESPACE}/{DEMO_DEPLOYMENT}, through custom.metrics.k8s.io; the CPU is External either way)",
    )


def build_scenario(args: argparse.Namespace) -> tuple[Scenario, int]:
    """The scenario the options describe and the number of steps to run; raises ValueError."""
    base = Scenario.short() if args.short else Scenario.default()
    compression = args.time_compression if args.time_compression is not None else base.time_compression
    duration = args.duration if args.duration is not None else base.simulated_seconds
    if duration == 0:
        if not args.keep_running:
            raise ValueError("--duration 0 runs no scenario: it needs --keep-running")
        scenario = Scenario.default(time_compression=compression)
        steps = 0
    else:
        scenario = Scenario.default(simulated_seconds=duration, time_compression=compression)
        steps = round(scenario.simulated_seconds / scenario.step_seconds)
    if args.seed != scenario.seed:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    if args.derived_pressure:
        scenario = scenario.with_derived_pressure()
    if not args.external_backlog:
        scenario = dataclasses.replace(scenario, backlog_object=DEMO_DEPLOYMENT)
    return scenario, steps


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


@dataclass
class _Signals:
    """SIGTERM raises KeyboardInterrupt like SIGINT does; ``received`` remembers which came."""

    received: int = 0
    _previous: dict[int, _Handler] = field(default_factory=dict)

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def ignored(self) -> Iterator[None]:
        """No interruption while the stack stops: a second Ctrl-C must not leave a child behind."""
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            yield
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)


def run(args: argparse.Namespace) -> int:
    try:
        scenario, steps = build_scenario(args)
    except ValueError as error:
        print(f"tidegauge demo: {error}", file=sys.stderr)
        return EXIT_USAGE
    signals = _Signals()
    signals.install()
    demo = Demo(scenario, steps, args.output_dir, keep_running=args.keep_running, out=sys.stdout)
    try:
        return demo.run()
    except KeyboardInterrupt:
        return demo.interrupted(signals.received or signal.SIGINT)
    except StackError as error:
        print(f"tidegauge demo: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        with signals.ignored():
            demo.stop()
