"""The demo's running parts, all on 127.0.0.1: Redis, moto, the API server and the two collectors.

Each part runs as a child process with its own log file in the output folder (Redis is either
``REDIS_URL`` or a throw-away server). :meth:`Stack.stop` stops them in reverse order, terminating
each by PID and killing it when it does not exit in time, so nothing outlives the demo.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import tidegauge
from tidegauge import environment
from tidegauge.config import RedisSettings
from tidegauge.demo.aws import FAKE_CREDENTIALS, DemoAws
from tidegauge.demo.config import REGION, DemoTiming, demo_config_yaml, validated
from tidegauge.demo.pki import FRONT_PROXY_CLIENT_NAME, DemoPki
from tidegauge.demo.processes import (
    STOP_TIMEOUT_SECONDS,
    ChildExited,
    ChildProcess,
    child_environment,
    read_line,
    spawn,
)
from tidegauge.localredis import RedisServer, RedisServerNotFound, RedisServerStartError, free_port
from tidegauge.redis_settings import connection_settings
from tidegauge.store import Store, StoreError

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "REDIS_URL"
"""A Redis the user gives the demo instead of the throw-away one."""
CONFIG_PARAMETER_NAME = "/tidegauge/demo/config"
COLLECTOR_FUNCTIONS = ("collect_sqs", "collect_cloudwatch")
LOG_FILES = ("moto.log", "server.log", "collectors.log")
RUN_FILES = ("stack.json", "result.json", "demo.png", "kubeconfig")
START_TIMEOUT_SECONDS = 30.0
SERVER_SHUTDOWN_SECONDS = 2.0
BIND_ADDRESS = "127.0.0.1"


class StackError(RuntimeError):
    """A part of the demo did not start; the message says which and where its log is."""


REQUIRED_MODULES = {
    "moto": "moto[server]",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "aiohttp": "aiohttp",
}
"""What the demo's parts import, and the distribution that provides each (all in ``tidegauge[dev]``)."""


def check_prerequisites() -> None:
    """Fail fast, naming what to install, when a part of the demo could not even start."""
    missing = [
        package for module, package in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise StackError(
            f"the demo needs {', '.join(missing)}: "
            "run it with `make demo`, or `pip install -e '.[dev]'` first"
        )
    functions_directory()


def functions_directory() -> Path:
    """``functions/`` of the source checkout the package is installed from (editable install)."""
    directory = Path(tidegauge.__file__).resolve().parents[2] / "functions"
    missing = [name for name in COLLECTOR_FUNCTIONS if not (directory / name / "app.py").is_file()]
    if missing:
        raise StackError(
            f"the collector functions were not found in {directory} (missing: {', '.join(missing)}). "
            "The demo runs the Lambda handlers from the source tree: run it from a checkout of the "
            "repository with the package installed editable (`make demo`, or `pip install -e .[dev]`)."
        )
    return directory


@dataclass
class Stack:
    """Starts and stops the demo's parts; ``output_dir`` receives logs, PKI and the generated config."""

    output_dir: Path
    timing: DemoTiming
    queue_name: str
    cluster_name: str
    derived_pressure: str | None = None
    """The expression of the derived metric ``orders_pressure`` (``--derived-pressure``), if any."""
    python: str = sys.executable
    redis_server: RedisServer | None = None
    redis_url: str = ""
    moto: ChildProcess | None = None
    moto_url: str = ""
    aws: DemoAws | None = None
    pki: DemoPki | None = None
    config_path: Path | None = None
    server: ChildProcess | None = None
    server_port: int = 0
    collectors: list[ChildProcess] = field(default_factory=list)
    started: dict[str, int] = field(default_factory=dict)
    usage_baseline: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def server_url(self) -> str:
        return f"https://{BIND_ADDRESS}:{self.server_port}"

    def pids(self) -> dict[str, int]:
        """PIDs of every process the demo started, running or not (an external Redis is not one)."""
        return dict(self.started)

    def _spawn(
        self, name: str, command: list[str], log_path: Path, env: dict[str, str], **options: bool
    ) -> ChildProcess:
        child = spawn(name, command, log_path, env, **options)
        key = name if name not in self.started else f"{name}-{len(self.started)}"
        self.started[key] = child.pid
        self.write_state()
        return child

    def write_state(self) -> Path:
        """``stack.json``: the PIDs started so far and the endpoints, rewritten as parts come up."""
        path = self.output_dir / "stack.json"
        document = {
            "pids": self.pids(),
            "redis_url": RedisSettings(url=self.redis_url).redacted_url if self.redis_url else "",
            "moto_url": self.moto_url,
            "server_url": self.server_url if self.server_port else "",
        }
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        return path

    def start_services(self) -> None:
        """Redis, moto (with the queue and the config parameter), PKI and the API server."""
        check_prerequisites()
        self._reset_output()
        self._start_redis()
        self._start_moto()
        self.pki = DemoPki.generate(self.output_dir / "pki")
        # The real URL reaches the children as TIDEGAUGE_REDIS_URL (as in the Lambda deployment), so a
        # password in REDIS_URL ends up neither in the written config nor on a command line.
        text = demo_config_yaml(
            RedisSettings(url=self.redis_url).redacted_url,
            self.timing,
            queue_name=self.queue_name,
            cluster_name=self.cluster_name,
            derived_pressure=self.derived_pressure,
        )
        config = validated(text)
        self.config_path = self.output_dir / "tidegauge-demo.yaml"
        self.config_path.write_text(text, encoding="utf-8")
        self.aws = DemoAws(self.moto_url, REGION)
        self.aws.create_queue(self.queue_name)
        self.aws.put_parameter(CONFIG_PARAMETER_NAME, text)
        self.usage_baseline = self._read_usage([source.name for source in config.sources])
        self._start_server()

    def _reset_output(self) -> None:
        """Empty the logs and remove a previous run's results, so nothing stale is mistaken for this run's."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name in LOG_FILES:
            (self.output_dir / name).write_bytes(b"")
        for name in RUN_FILES:
            (self.output_dir / name).unlink(missing_ok=True)

    def _start_redis(self) -> None:
        given = os.environ.get(REDIS_URL_ENV, "")
        if given:
            self.redis_url = given
            try:
                store = Store.connect(connection_settings(RedisSettings(url=given)))
                try:
                    store.ping()
                finally:
                    store.close()
            except StoreError as error:
                redacted = RedisSettings(url=given).redacted_url
                raise StackError(f"{REDIS_URL_ENV}={redacted} is not reachable: {error}") from error
            return
        self.redis_server = RedisServer()
        try:
            self.redis_server.start()
        except (RedisServerNotFound, RedisServerStartError) as error:
            raise StackError(f"cannot start a Redis server: {error}; or set {REDIS_URL_ENV}") from error
        self.redis_url = self.redis_server.url
        if self.redis_server.pid is not None:
            self.started["redis"] = self.redis_server.pid
            self.write_state()

    def _start_moto(self) -> None:
        log = self.output_dir / "moto.log"
        self.moto = self._spawn(
            "moto",
            [self.python, "-m", "tidegauge.demo.moto_process"],
            log,
            child_environment({}),
            stdout_pipe=True,
        )
        assert self.moto.process.stdout is not None
        url = read_line(self.moto.process.stdout, START_TIMEOUT_SECONDS)
        if not url.startswith("http://"):
            self.ensure_running()
            raise StackError(
                f"moto did not report its address within {START_TIMEOUT_SECONDS:.0f} s; see {log}"
            )
        self.moto_url = url
        self.write_state()

    def _start_server(self) -> None:
        assert self.pki is not None
        assert self.config_path is not None
        log = self.output_dir / "server.log"
        for _attempt in range(3):
            self.server_port = free_port()
            command = [
                self.python, "-m", "tidegauge.cli", "--log-level", "INFO", "serve",
                "--bind-address", BIND_ADDRESS,
                "--secure-port", str(self.server_port),
                "--tls-cert-file", str(self.pki.serving.certificate),
                "--tls-private-key-file", str(self.pki.serving.key),
                "--requestheader-client-ca-file", str(self.pki.front_proxy_ca),
                "--requestheader-allowed-names", FRONT_PROXY_CLIENT_NAME,
                "--client-ca-file", str(self.pki.client_ca),
                "--authentication-skip-lookup",
                "--authorization-mode", "AlwaysAllowAuthenticated",
                "--config", str(self.config_path),
                "--metrics-port", "0",
                "--shutdown-timeout", str(SERVER_SHUTDOWN_SECONDS),
            ]  # fmt: skip
            env = child_environment({environment.REDIS_URL: self.redis_url})
            self.server = self._spawn("server", command, log, env)
            if self._wait_ready(self.server):
                self.write_state()
                return
            if self.server.running():
                break
            self.server.stop()
        raise StackError(
            f"the API server did not become ready within {START_TIMEOUT_SECONDS:.0f} s; see {log}"
        )

    def _wait_ready(self, server: ChildProcess) -> bool:
        """Poll ``/readyz`` (no authentication, as the kubelet does) until 200 or the process exits."""
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.serving_ca))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not server.running():
                return False
            try:
                with urllib.request.urlopen(f"{self.server_url}/readyz", context=context, timeout=2) as reply:
                    if reply.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def start_collectors(self) -> None:
        """Both collector functions, each invoked on the (compressed) every-minute schedule."""
        directory = functions_directory()
        for name in COLLECTOR_FUNCTIONS:
            env = child_environment(
                {
                    **FAKE_CREDENTIALS,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_REGION": REGION,
                    environment.AWS_ENDPOINT_URL: self.moto_url,
                    "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                    "POWERTOOLS_SERVICE_NAME": name,
                    "POWERTOOLS_METRICS_NAMESPACE": "tidegauge",
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "LOG_LEVEL": "INFO",
                    environment.CONFIG_PARAMETER: CONFIG_PARAMETER_NAME,
                    environment.REDIS_URL: self.redis_url,
                }
            )
            command = [
                self.python, "-m", "tidegauge.demo.collector_process",
                "--handler", str(directory / name / "app.py"),
                "--every", f"{self.timing.schedule_seconds:g}",
                "--function-name", f"tidegauge-demo-{name.replace('_', '-')}",
                "--region", REGION,
            ]  # fmt: skip
            self.collectors.append(self._spawn(name, command, self.output_dir / "collectors.log", env))

    def ensure_running(self) -> None:
        """Raise StackError when a child died (its log says why)."""
        try:
            for child in (self.moto, self.server, *self.collectors):
                if child is not None:
                    child.ensure_running()
        except ChildExited as error:
            raise StackError(str(error)) from error

    def _read_usage(self, sources: list[str]) -> dict[str, dict[str, float]]:
        store = Store.connect(connection_settings(RedisSettings(url=self.redis_url)))
        try:
            return {source: store.read_usage(source) for source in sources}
        finally:
            store.close()

    def collector_api_calls(self) -> dict[str, int]:
        """AWS calls the collectors recorded in Redis during this run, by operation (usage totals)."""
        calls: dict[str, int] = {}
        for source, now in self._read_usage(list(self.usage_baseline)).items():
            before = self.usage_baseline.get(source, {})
            for name, value in now.items():
                if name.startswith("api_calls."):
                    operation = name.removeprefix("api_calls.")
                    count = int(value - before.get(name, 0.0))
                    if count:
                        calls[operation] = calls.get(operation, 0) + count
        return calls

    def stop(self) -> None:
        """Stop everything started, newest first; a part that fails to stop does not keep others running."""
        steps: list[tuple[str, Callable[[], None]]] = [(child.name, child.stop) for child in self.collectors]
        if self.server is not None:
            steps.append(
                ("server", partial(self.server.stop, SERVER_SHUTDOWN_SECONDS + STOP_TIMEOUT_SECONDS))
            )
        if self.aws is not None:
            steps.append(("aws clients", self.aws.close))
        if self.moto is not None:
            steps.append(("moto", self.moto.stop))
        if self.redis_server is not None:
            steps.append(("redis", self.redis_server.stop))
        self.collectors, self.server, self.aws, self.moto, self.redis_server = [], None, None, None, None
        for name, action in steps:
            try:
                action()
            except Exception:  # keep stopping the other parts
                logger.exception("could not stop %s cleanly", name)
