"""``tidegauge serve`` as a child process, ready when it says so: its log line, not a polling loop.

The server logs ``serving <groups> on https://<address>:<port>`` once every listener is bound (readiness
is true from then on, see :mod:`tidegauge.server.runner`). A thread reads the child's stderr line by
line, keeps every line (so the pipe never fills and a test can read the log afterwards), and sets an
event when that line arrives or the child exits.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

READY_MARK = " on https://"


class ServeProcess:
    """A running ``python -m tidegauge.cli serve ARGS`` whose stderr is collected in the background."""

    def __init__(self, args: Sequence[str], environment: Mapping[str, str]) -> None:
        command = [sys.executable, "-m", "tidegauge.cli", "serve", *args]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=dict(environment))
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._reader = threading.Thread(target=self._read, name="serve-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        for line in stream:
            with self._lock:
                self._lines.append(line)
            if READY_MARK in line and "serving " in line:
                self._ready.set()
        self._ended.set()
        self._ready.set()

    @property
    def log(self) -> str:
        """Everything the child wrote to stderr so far."""
        with self._lock:
            return "".join(self._lines)

    def wait_ready(self, seconds: float = 20.0) -> None:
        """Until the child logged that it serves; fails at once if it exits first."""
        if not self._ready.wait(seconds):
            raise AssertionError(f"the server did not start within {seconds} s:\n{self.log}")
        if self._ended.is_set() or self.process.poll() is not None:
            raise AssertionError(f"the server exited before it was ready:\n{self.log}")

    def wait_log_closed(self, seconds: float = 15.0) -> str:
        """The whole log, once the child has closed stderr (it exited)."""
        if not self._ended.wait(seconds):
            raise AssertionError(f"the server's log did not end within {seconds} s")
        self._reader.join(seconds)
        return self.log

    def stop(self) -> None:
        """Kill the child if it still runs, reap it, and close its pipe."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._ended.wait(10)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
