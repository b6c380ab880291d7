"""The demo's stand-in for AWS: a moto server on 127.0.0.1, in a process of its own.

Run as ``python -m tidegauge.demo.moto_process``: it binds a free loopback port, prints its endpoint
URL as the first line of standard output and serves until SIGTERM or SIGINT. A process of its own
gives moto a CPU core and keeps its request log out of the demo's terminal.

moto's SQS recomputes every queue attribute, reading the clock through ``datetime`` for each message
in the queue, whenever one message is sent or received; that makes a backlog of a few hundred
messages cost tens of milliseconds per message. :func:`speed_up_sqs` replaces the two slow helpers by
equivalents (the same wall clock, the same retention rule) so the demo's queue keeps up with its
time compression. Queue semantics are unchanged.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

BIND_ADDRESS = "127.0.0.1"


def speed_up_sqs() -> bool:
    """Patch moto's SQS clock and retention check with cheaper equivalents; False if moto changed shape."""
    try:
        from moto.sqs import models
    except ImportError:
        return False
    slow_millis = getattr(models, "unix_time_millis", None)
    backend = getattr(models, "SQSBackend", None)
    if slow_millis is None or backend is None:
        return False
    if not hasattr(backend, "is_message_valid_based_on_retention_period"):
        return False

    def unix_time_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else float(slow_millis(dt))

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
        return bool(retain_until > time.time())

    setattr(models, "unix_time_millis", unix_time_millis)  # noqa: B010  # moto does not export the name
    backend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    return True


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if not speed_up_sqs():
        logger.warning("moto's SQS internals changed; running it unpatched (the demo may lag)")
    from moto.server import ThreadedMotoServer

    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = ThreadedMotoServer(ip_address=BIND_ADDRESS, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        print(f"http://{host}:{port}", flush=True)
        # Nothing else goes to the pipe the parent read the address from: it is no longer drained.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
