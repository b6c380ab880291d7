"""Helpers for collector tests: a fake clock, a fake Lambda context, AWS fault injection, a moto server."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.server import ThreadedMotoServer

from tests.support.clock import FakeClock
from tidegauge.sources.function import CollectorFunction

__all__ = ["FakeClock"]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and the collectors read from a Lambda context."""

    clock: Callable[[], float]
    timeout_seconds: float = 60.0
    function_name: str = "tidegauge-collect"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:tidegauge-collect"
    aws_request_id: str = "6f1c9d52-3b8a-4e0f-9c7d-2a5b8e1f4d63"
    started_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        return int((self.started_at + self.timeout_seconds - self.clock()) * 1000)


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def load_handler(function: str, clock: FakeClock | None = None) -> ModuleType:
    """Import ``functions/<function>/app.py`` as a fresh module (both handlers are called ``app``).

    With ``clock``, the handler's function is built afresh around it (time read from it, sleeps on it),
    as the handler builds its own: the same kind, metrics and tracer.
    """
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"tidegauge_test_{function}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if clock is not None:
        built = cast(CollectorFunction, vars(module)["function"])
        vars(module)["function"] = CollectorFunction(
            built.kind, metrics=built.metrics, tracer=built.tracer, clock=clock, sleep=clock.sleep
        )
    return module


@contextlib.contextmanager
def mock_aws_for(monkeypatch: pytest.MonkeyPatch, region: str) -> Iterator[None]:
    """moto's in-process AWS with fake credentials, and no endpoint or profile from the caller's shell."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    with mock_aws():
        yield


def emf_records(output: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed (one JSON object per line with an ``_aws`` key)."""
    records = []
    for line in output.splitlines():
        if line.startswith("{"):
            document = json.loads(line)
            if "_aws" in document:
                records.append(document)
    return records


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(url: str, status: int, error_type: str, message: str) -> AWSResponse:
    """An AWS JSON-protocol error answer, as botocore would receive it over HTTP."""
    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers = {"x-amzn-RequestId": "injected", "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, cast(Any, headers), _Body(body))


def inject_error(
    client: Any,
    operation: str,
    error_type: str,
    *,
    status: int = 400,
    message: str = "injected",
    when: Callable[[Any], bool] = lambda _request: True,
    times: int | None = None,
) -> list[int]:
    """Answer ``operation`` calls of ``client`` that ``when`` selects with an error, before the network.

    Retries see the error too (it is injected per HTTP attempt). Returns a list that grows by one per
    injected answer; ``times`` limits how many are injected.
    """
    injected: list[int] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        if (times is None or len(injected) < times) and when(request):
            injected.append(1)
            return error_response(request.url, status, error_type, message)
        return None

    client.meta.events.register(f"before-send.{service}.{operation}", handler)
    return injected


def body_contains(text: str) -> Callable[[Any], bool]:
    def matches(request: Any) -> bool:
        body = request.body
        return text in (body.decode() if isinstance(body, bytes) else str(body))

    return matches


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free 127.0.0.1 port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
