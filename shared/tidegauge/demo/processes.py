"""Child processes of the demo: started with their output in a log file, stopped by PID, never orphaned.

A child gets the parent's environment minus anything that could point it at real AWS, another
tidegauge deployment or a cluster identity; the demo adds what each part needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 5.0
_INHERITED_PREFIXES = ("AWS_", "TIDEGAUGE_", "POWERTOOLS_", "KUBERNETES_")
"""Variables the children do not inherit: real AWS settings, another deployment's tidegauge settings,
an in-cluster identity."""


class ChildExited(RuntimeError):
    """A child process ended while the demo still needed it."""


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without AWS, tidegauge and in-cluster settings, plus ``extra``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    return {**inherited, **extra}


@dataclass
class ChildProcess:
    """One child process, its output appended to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def ensure_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise ChildExited(f"{self.name} exited with status {code}; see {self.log_path}")

    def stop(self, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Terminate (SIGTERM) and wait; kill if it is still there after ``timeout_seconds``."""
        process = self.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s (pid %d) did not stop in %.0f s: killing it", self.name, self.pid, timeout_seconds
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=timeout_seconds)
        if process.stdout is not None:
            process.stdout.close()


def spawn(
    name: str, command: list[str], log_path: Path, env: dict[str, str], *, stdout_pipe: bool = False
) -> ChildProcess:
    """Start ``command`` with stderr (and stdout unless piped) appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            env=env,
        )
    logger.debug("started %s (pid %d): %s", name, process.pid, " ".join(command))
    return ChildProcess(name, process, log_path)


def read_line(stream: IO[bytes], timeout_seconds: float) -> str:
    """The next line of ``stream``, or "" when none arrives within ``timeout_seconds``."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout_seconds):
            return ""
        return stream.readline().decode("utf-8", "replace").strip()
