"""SIGTERM with a shutdown delay: readiness fails at once, requests are still served, then it drains."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.serve_process import ServeProcess
from tests.support.server_harness import Pki, request
from tidegauge.localredis import RedisServer, free_port

pytestmark = pytest.mark.integration

DELAY = 2.0


def test_sigterm_keeps_serving_during_the_shutdown_delay_with_readiness_failing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    pki = Pki(tmp_path)
    port = free_port()
    args = [
        "--bind-address", "127.0.0.1", "--secure-port", str(port), "--metrics-port", "0",
        "--tls-cert-file", pki.cert_file, "--tls-private-key-file", pki.key_file,
        "--client-ca-file", pki.client_ca_file, "--authentication-skip-lookup",
        "--authorization-mode", "AlwaysAllowAuthenticated", "--redis-url", redis_server.url,
        "--shutdown-delay-duration", str(DELAY),
    ]  # fmt: skip
    served = ServeProcess(args, {**os.environ, "TIDEGAUGE_CONFIG": ""})
    process = served.process
    try:
        served.wait_ready()
        assert request(port, "/readyz", pki.context()).status == 200
        # GIVEN SIGTERM
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # THEN readiness fails at once, while new connections and requests are still answered
        ready = request(port, "/readyz", pki.context())
        assert ready.status == 503
        assert b"shutting down" in ready.body
        assert request(port, "/livez", pki.context()).status == 200
        assert request(port, "/apis", pki.context(pki.client_ca.issue("jane"))).status == 200
        assert time.monotonic() - signalled < DELAY
        # AND after the delay it drains and exits 0
        assert process.wait(DELAY + 15) == 0
        assert time.monotonic() - signalled >= DELAY
        assert "readiness failing" in served.wait_log_closed()
    finally:
        served.stop()
