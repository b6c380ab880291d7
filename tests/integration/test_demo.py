"""``tidegauge demo`` end to end: the short run closes the loop, and kubectl can query the kept-up stack."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHORT_RUN_TIMEOUT_SECONDS = 120
KUBECTL_LINE = re.compile(r"^\s*(kubectl --kubeconfig .+)$")


def demo_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "tidegauge.cli", "demo", *options]


def demo_environment() -> dict[str, str]:
    """The test's environment without REDIS_URL or NO_COLOR: the demo must start its own Redis and
    keep escape sequences out of a non-terminal by itself."""
    return {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "NO_COLOR")}


def alive(pids: Mapping[str, int]) -> dict[str, int]:
    """The processes of ``pids`` that still exist."""
    remaining = {}
    for name, pid in pids.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        remaining[name] = pid
    return remaining


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    output = tmp_path_factory.mktemp("demo")
    completed = subprocess.run(
        demo_command("--short", "--output-dir", str(output)),
        capture_output=True,
        text=True,
        timeout=SHORT_RUN_TIMEOUT_SECONDS,
        env=demo_environment(),
        check=False,
    )
    return completed, output


def result_of(output: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((output / "result.json").read_text())
    return loaded


def test_the_short_demo_scales_up_and_back_down(
    short_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    # GIVEN the short demo, run to completion with its output captured (not a terminal)
    completed, _ = short_run

    # THEN it succeeded and its summary counts at least one scale-up and one scale-down
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    ups = re.search(r"scale-ups\s+(\d+)", completed.stdout)
    downs = re.search(r"scale-downs\s+(\d+)", completed.stdout)
    assert ups is not None
    assert int(ups.group(1)) >= 1
    assert downs is not None
    assert int(downs.group(1)) >= 1
    assert "by the collectors" in completed.stdout
    assert "by the simulated workload" in completed.stdout
    # AND the plan says the HPA scales on an Object metric of the consumer Deployment
    assert "sqs_messages{queue=demo-orders} AverageValue 6 (Object of Deployment demo/orders-worker)" in (
        completed.stdout
    )
    # AND nothing in its output is a terminal escape sequence
    assert "\x1b" not in completed.stdout
    assert "\x1b" not in completed.stderr


def test_replicas_follow_the_backlog_seen_through_the_server(
    short_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    # GIVEN the machine-readable record of the short run
    _, output = short_run
    result = result_of(output)
    timeline, syncs = result["timeline"], result["syncs"]
    minimum = result["scenario"]["hpa"]["min_replicas"]
    assert result["closed_loop"] is True

    # THEN the first scale-up came while the backlog was rising, on a backlog the HPA read from the server
    peak = max(timeline, key=lambda point: point["visible"] + point["in_flight"] + point["delayed"])
    first_up = next(s for s in syncs if s["desired_replicas"] > s["current_replicas"])
    assert first_up["t"] <= peak["t"]
    assert first_up["values"]["sqs_messages"] > first_up["current_replicas"] * 6
    # AND the first scale-down came only after the backlog had drained
    drained_at = result["stats"]["peak_time"] + result["stats"]["drain_seconds"]
    first_down = next(s for s in syncs if s["desired_replicas"] < s["current_replicas"])
    assert first_down["t"] >= drained_at
    # AND the run ends back at the minimum
    assert timeline[-1]["desired"] == minimum
    # AND the HPA read both metrics through the aggregator path in (nearly) every sync: the backlog as
    # the Object metric of Deployment demo/orders-worker (custom.metrics.k8s.io), the CPU as External
    assert result["scenario"]["backlog_object"] == "orders-worker"
    failed = [s for s in syncs if s["failures"]]
    assert len(failed) <= len(syncs) // 10, failed
    # AND the collectors' own AWS calls were counted apart from the simulated workload's
    assert result["aws_calls"]["collectors"].get("GetQueueAttributes", 0) > 0
    assert result["aws_calls"]["collectors"].get("GetMetricData", 0) > 0
    assert result["aws_calls"]["workload"].get("SendMessageBatch", 0) > 0


def test_the_chart_is_a_png(short_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    # GIVEN the chart of the short run
    _, output = short_run
    data = (output / "demo.png").read_bytes()

    # THEN it is a PNG: the signature, then an IHDR chunk of the chart's size
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 600)


def test_no_process_of_the_demo_survives_it(short_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    # GIVEN the PIDs the demo recorded for everything it started
    _, output = short_run
    pids = result_of(output)["pids"]
    assert set(pids) >= {"redis", "moto", "server", "collect_sqs", "collect_cloudwatch"}

    # THEN none of them exists any more
    assert alive(pids) == {}


class LineReader:
    """Reads a process's output lines on a thread, so the test can wait for one with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def join(self, seconds: float) -> None:
        """Until the stream ended (the process closed it)."""
        self._thread.join(seconds)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                raise AssertionError("the demo ended before printing:\n" + "".join(self.lines))
            match = pattern.match(line)
            if match:
                return match


@pytest.fixture
def kept_running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], LineReader, Path]]:
    process = subprocess.Popen(
        demo_command("--keep-running", "--duration", "0", "--short", "--output-dir", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=demo_environment(),
    )
    reader = LineReader(process.stdout)
    try:
        yield process, reader, tmp_path
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        reader.join(10)
        assert process.stdout is not None
        process.stdout.close()


def test_kubectl_queries_the_kept_running_stack(
    kept_running: tuple[subprocess.Popen[str], LineReader, Path],
) -> None:
    if KUBECTL is None:
        pytest.skip("kubectl is not on PATH: the demo's kubeconfig cannot be tried with a real client")
    # GIVEN the demo's stack kept running, and the command it printed
    process, reader, output = kept_running
    command = shlex.split(reader.wait_for(KUBECTL_LINE, timeout=60).group(1))

    # WHEN kubectl runs it with the generated kubeconfig
    completed = subprocess.run(
        [KUBECTL, *command[1:]], capture_output=True, text=True, timeout=30, check=False
    )

    # THEN it gets the queue's series, one per state
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
    assert answer["kind"] == "ExternalMetricValueList"
    states = {item["metricLabels"]["state"] for item in answer["items"]}
    assert states == {"visible", "in_flight", "delayed"}
    assert {item["metricLabels"]["queue"] for item in answer["items"]} == {"demo-orders"}

    # WHEN Ctrl-C (SIGINT) is sent to the demo
    pids = json.loads((output / "stack.json").read_text())["pids"]
    process.send_signal(signal.SIGINT)
    code = process.wait(30)

    # THEN it stops cleanly and leaves no process behind
    assert code == 0, "".join(reader.lines[-20:])
    assert alive(pids) == {}
