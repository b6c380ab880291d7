"""The local server helper picks ports a cluster node can use, and picks anew when a start fails."""

from __future__ import annotations

import pytest

from tidegauge import localredis
from tidegauge.localredis import (
    CLUSTER_BUS_OFFSET,
    MAX_PORT,
    RedisServer,
    RedisServerStartError,
    free_port,
    free_ports,
)


def test_free_port_stays_at_or_below_the_limit() -> None:
    # GIVEN a limit well inside the kernel's ephemeral range (32768-60999 by default)
    limit = MAX_PORT - CLUSTER_BUS_OFFSET
    # WHEN many ports are picked THEN none is above it
    assert all(free_port(limit) <= limit for _ in range(200))


def test_a_cluster_node_refuses_a_port_without_room_for_its_bus() -> None:
    with pytest.raises(RedisServerStartError, match="cluster bus"):
        RedisServer(binary="/bin/false", cluster_enabled=True, port=MAX_PORT - CLUSTER_BUS_OFFSET + 1).start()


def test_a_failed_start_retries_on_a_new_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a binary that always exits at once, and a port picker that hands out distinct ports
    picked: list[int] = []

    def pick(highest: int = MAX_PORT) -> int:
        picked.append(40000 + len(picked))
        return picked[-1]

    monkeypatch.setattr(localredis, "free_port", pick)
    monkeypatch.setattr(localredis, "START_TIMEOUT_SECONDS", 2.0)
    # WHEN it cannot start THEN each of the three attempts used a port of its own
    with pytest.raises(RedisServerStartError):
        RedisServer(binary="/bin/false", cluster_enabled=True).start()
    assert picked == [40000, 40001, 40002]


def test_free_ports_are_distinct_and_leave_room_for_a_cluster_bus() -> None:
    limit = MAX_PORT - CLUSTER_BUS_OFFSET
    ports = free_ports(50, limit)
    assert len(set(ports)) == 50
    assert max(ports) <= limit
