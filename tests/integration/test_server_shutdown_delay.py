"""SIGTERM with a shutdown delay: readiness fails at once, requests are still served, then it drains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.server_harness import Pki, request, stop_process
from tidegauge.localredis import RedisServer, free_port

pytestmark = pytest.mark.integration

DELAY = 2.0


def test_sigterm_keeps_serving_during_the_shutdown_delay_with_readiness_failing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    pki = Pki(tmp_path)
    port = free_port()
    command = [
        sys.executable, "-m", "tidegauge.cli", "serve",
        "--bind-address", "127.0.0.1", "--secure-port", str(port), "--metrics-port", "0",
        "--tls-cert-file", pki.cert_file, "--tls-private-key-file", pki.key_file,
        "--client-ca-file", pki.client_ca_file, "--authentication-skip-lookup",
        "--authorization-mode", "AlwaysAllowAuthenticated", "--redis-url", redis_server.url,
        "--shutdown-delay-duration", str(DELAY),
    ]  # fmt: skip
    environment = {**os.environ, "TIDEGAUGE_CONFIG": ""}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "the server exited before it was ready"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if request(port, "/readyz", pki.context(), timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
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
        assert process.stderr is not None
        assert "readiness failing" in process.stderr.read()
    finally:
        stop_process(process)
