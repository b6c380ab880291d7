"""One run of the demo: start the stack, step the scenario, report, and optionally hold the stack up."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import TextIO

from tidegauge.config import RedisSettings
from tidegauge.demo.aggregator import AggregatorClient, external_metric_path, object_metric_path
from tidegauge.demo.chart import render_chart
from tidegauge.demo.config import DemoTiming
from tidegauge.demo.driver import Driver
from tidegauge.demo.report import Verdict, verdict, write_result
from tidegauge.demo.scenario import CPU_TARGET_PERCENT, SQS_METRIC, Scenario, pressure_expression
from tidegauge.demo.stack import CONFIG_PARAMETER_NAME, Stack
from tidegauge.demo.view import LiveView, format_clock, summary
from tidegauge.demo.workload import RateProfile, RateSegment, Workload

logger = logging.getLogger(__name__)

METRICS_WAIT_SECONDS = 30.0
"""How long the start waits for the server to answer both HPA metrics before the clock starts."""
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class Demo:
    """One run of the demo: start, step, report, and (with ``keep_running``) hold the stack up."""

    def __init__(
        self, scenario: Scenario, steps: int, output_dir: Path, *, keep_running: bool, out: TextIO
    ) -> None:
        self.scenario = scenario
        self.steps = steps
        self.output_dir = output_dir
        self.keep_running = keep_running
        self.out = out
        self.timing = DemoTiming.for_compression(scenario.time_compression)
        pressure = (
            pressure_expression(scenario.queue_name, scenario.cluster_name)
            if scenario.derived_pressure
            else None
        )
        self.stack = Stack(
            output_dir, self.timing, scenario.queue_name, scenario.cluster_name, derived_pressure=pressure
        )
        self.aggregator: AggregatorClient | None = None
        self.driver: Driver | None = None
        self.view: LiveView | None = None
        self.holding = False
        self.failed = False
        self.started = time.monotonic()

    def run(self) -> int:
        self._print_plan()
        stack = self.stack
        stack.start_services()
        assert stack.pki is not None
        assert stack.aws is not None
        aws = stack.aws
        self.aggregator = AggregatorClient(
            "127.0.0.1",
            stack.server_port,
            server_ca=stack.pki.serving_ca,
            client_certificate=stack.pki.front_proxy.certificate,
            client_key=stack.pki.front_proxy.key,
        )
        self.view = LiveView(self.out)
        self.driver = Driver(
            self.scenario, aws, self.aggregator, on_point=self.view.update, check=stack.ensure_running
        )
        self.driver.prime(self.timing.cloudwatch_period_seconds)
        stack.start_collectors()
        self._print_stack()
        failing = self.driver.wait_for_metrics(METRICS_WAIT_SECONDS)
        if failing:
            self._say(
                f"note: the server has no value yet for {', '.join(failing)}; the HPA holds until it has"
            )
        ready_at = time.monotonic()
        if self.steps == 0:
            return self.hold()
        self._say("")
        self.driver.run(self.steps)
        self.view.close()
        run_seconds = time.monotonic() - ready_at
        calls = {"collectors": self.stack.collector_api_calls(), "workload": aws.calls()}
        if not self.keep_running:
            self.stop()
        outcome = self._report(calls, ready_at - self.started, run_seconds)
        self.failed = not outcome.closed
        if self.keep_running:
            return self.hold()
        return EXIT_FAILED if self.failed else EXIT_OK

    def hold(self) -> int:
        """Keep the stack up with a steady quiet workload until Ctrl-C; print how to query it."""
        assert self.driver is not None
        assert self.stack.pki is not None
        kubeconfig = self.stack.pki.write_kubeconfig(self.output_dir / "kubeconfig", self.stack.server_url)
        scenario = self.scenario
        quiet = scenario.profile.segments[-1].rate_per_second
        self.driver.use_workload(
            Workload(
                RateProfile((RateSegment(scenario.simulated_seconds, quiet),)),
                scenario.drain_per_pod,
                cpu_model=scenario.cpu_model,
                seed=scenario.seed,
            )
        )
        backlog = scenario.hpa.metrics[0]
        path = external_metric_path(scenario.namespace, backlog.name, backlog.selector)
        self._say("")
        self._say(f"The stack keeps running (quiet workload, {quiet:g} msg/s). Query it as a real client:")
        self._say(f"  kubectl --kubeconfig {kubeconfig.resolve()} get --raw '{path}'")
        if scenario.backlog_object is not None and backlog.name == SQS_METRIC:
            custom = object_metric_path(
                scenario.namespace, "deployments.apps", scenario.backlog_object, backlog.name
            )
            self._say(f"  kubectl --kubeconfig {kubeconfig.resolve()} get --raw '{custom}'")
        self._say("Press Ctrl-C to stop everything.")
        self._say("")
        self.holding = True
        self.view = LiveView(self.out)
        self.driver.on_point = self.view.update
        self.driver.run(None)
        return EXIT_OK

    def interrupted(self, signum: int) -> int:
        """Ctrl-C (or SIGTERM): a clean stop; during ``--keep-running``'s hold that is the normal end."""
        if self.view is not None:
            with contextlib.suppress(Exception):
                self.view.close()
        if self.holding:
            self._say("\nstopping the demo stack")
            return EXIT_FAILED if self.failed else EXIT_OK
        self._say("\ninterrupted: stopping the demo stack")
        return EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum

    def stop(self) -> None:
        if self.aggregator is not None:
            self.aggregator.close()
        self.stack.stop()

    def _report(
        self, calls: dict[str, dict[str, int]], startup_seconds: float, run_seconds: float
    ) -> Verdict:
        assert self.driver is not None
        driver = self.driver
        timeline = driver.timeline
        chart_path = self._chart()
        outcome = verdict(timeline)
        holds = sum(1 for sync in driver.syncs if sync.failures)
        self._say("")
        text = summary(timeline, calls["collectors"], chart_path, workload_calls=calls["workload"])
        self._say(text.rstrip("\n"))
        self._say(f"  HPA syncs      {len(driver.syncs)} ({holds} with a metric unavailable)")
        wall = f"  wall time      {startup_seconds:.0f} s start-up, {run_seconds:.0f} s run"
        if driver.lag_seconds > 1:
            wall += f" ({driver.lag_seconds:.1f} s behind the clock: some steps overran)"
        self._say(wall)
        if self.scenario.derived_pressure:
            busiest = max((point.cpu for point in timeline if point.cpu is not None), default=0.0)
            self._say(
                f"  max Aurora CPU {busiest:.0f} % (target {CPU_TARGET_PERCENT:g} %, held by orders_pressure)"
            )
        result = write_result(
            self.output_dir / "result.json",
            scenario=self.scenario,
            timing=self.timing,
            timeline=timeline,
            syncs=driver.syncs,
            outcome=outcome,
            aws_calls=calls,
            pids=self.stack.pids(),
            wall_seconds={"start_up": round(startup_seconds, 2), "run": round(run_seconds, 2)},
            extra={
                "lag_seconds": round(driver.lag_seconds, 3),
                "server_requests": self.aggregator.requests if self.aggregator else 0,
                "chart": None if chart_path is None else str(chart_path),
            },
        )
        self._say(f"  result         {result}")
        if outcome.closed:
            self._say("The loop closed: replicas rose with the backlog and fell after it drained.")
        else:
            for problem in outcome.problems:
                self._say(f"The loop did not close: {problem}")
        return outcome

    def _chart(self) -> Path | None:
        assert self.driver is not None
        if not self.driver.timeline:
            return None
        scenario = self.scenario
        title = (
            f"tidegauge demo: {scenario.queue_name} backlog and HPA replicas "
            f"({scenario.simulated_seconds:g} s simulated at {scenario.time_compression:g}x)"
        )
        try:
            derived = "orders_pressure" if scenario.derived_pressure else None
            return render_chart(self.driver.timeline, self.output_dir / "demo.png", title, derived=derived)
        except ImportError:
            self._say("note: matplotlib is not installed, no chart drawn (pip install matplotlib)")
            return None

    def _print_plan(self) -> None:
        scenario = self.scenario
        if self.steps:
            what = (
                f"{format_clock(scenario.simulated_seconds)} simulated at {scenario.time_compression:g}x "
                f"(about {scenario.wall_seconds:.0f} s)"
            )
        else:
            what = "no scenario, the stack only"
        self._say(f"tidegauge demo: {what}; output in {self.output_dir}/")

    def _print_stack(self) -> None:
        stack, scenario, timing = self.stack, self.scenario, self.timing
        redis = "REDIS_URL" if stack.redis_server is None else "throw-away server"
        hpa = ", ".join(
            f"{m.name}{{{m.selector}}} {m.target_type} {m.target:g}"
            + (
                f" (Object of Deployment {scenario.namespace}/{scenario.backlog_object})"
                if m.name == SQS_METRIC and scenario.backlog_object is not None
                else " (External)"
            )
            for m in scenario.hpa.metrics
        )
        lines = [
            f"  redis       {RedisSettings(url=stack.redis_url).redacted_url} ({redis})",
            f"  aws         moto at {stack.moto_url}: SQS {scenario.queue_name}, CloudWatch, "
            f"SSM {CONFIG_PARAMETER_NAME}",
            f"  server      {stack.server_url} (TLS, front-proxy and client-certificate authentication)",
            f"  collectors  collect_sqs, collect_cloudwatch every {timing.schedule_seconds:g} s "
            f"(one simulated minute), sampling every {timing.sample_interval_seconds:g} s",
            f"  hpa         {hpa}; {scenario.hpa.min_replicas}-{scenario.hpa.max_replicas} replicas",
            f"  logs        {self.output_dir}/server.log, collectors.log, moto.log",
        ]
        for line in lines:
            self._say(line)

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
