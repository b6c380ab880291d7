"""Fallback clocks are kept per namespace: one tenant's flood of selectors cannot reset another's."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.server_harness import server_config
from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.selectors import parse_selector
from tidegauge.server.provider import UNFRESH_PER_NAMESPACE, ExternalMetricsProvider, MetricNotFound

CONFIG = server_config("redis://127.0.0.1:1/0")  # db_load: fallback 0.5 after 60 s; shop and default read it


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class EmptyReader:
    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        return []


def ask(provider: ExternalMetricsProvider, namespace: str, selector: str) -> list[float]:
    """The values served for db_load, or [] when it is not found (yet)."""
    try:
        values = asyncio.run(provider.get_external_metric(namespace, parse_selector(selector), "db_load"))
    except MetricNotFound:
        return []
    return [value.value for value in values]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(clock: Clock) -> ExternalMetricsProvider:
    return ExternalMetricsProvider(EmptyReader(), CONFIG, snapshot_seconds=0.0, clock=clock, monotonic=clock)


def test_another_namespaces_flood_of_selectors_does_not_reset_a_fallback_clock(
    provider: ExternalMetricsProvider, clock: Clock
) -> None:
    # GIVEN an HPA in shop whose metric has had no series since now
    assert ask(provider, "shop", "instance=main") == []
    # WHEN a reader in default asks 10,050 distinct selectors
    for index in range(10_050):
        ask(provider, "default", f"instance=flood{index}")
    # THEN shop's fallback is served on time, 60 s after its first unanswered request
    clock.now += 60
    assert ask(provider, "shop", "instance=main") == [0.5]


def test_a_namespace_forgets_only_its_own_least_recently_asked_clocks(
    provider: ExternalMetricsProvider, clock: Clock
) -> None:
    # GIVEN two selectors in default, then more distinct ones than one namespace keeps
    assert ask(provider, "default", "instance=old") == []
    assert ask(provider, "default", "instance=recent") == []
    for index in range(UNFRESH_PER_NAMESPACE - 1):
        ask(provider, "default", f"instance=flood{index}")
        if index == UNFRESH_PER_NAMESPACE // 2:
            ask(provider, "default", "instance=recent")
    # THEN the least recently asked one was forgotten (its clock restarts), the recently asked one kept
    clock.now += 60
    assert ask(provider, "default", "instance=recent") == [0.5]
    assert ask(provider, "default", "instance=old") == []
