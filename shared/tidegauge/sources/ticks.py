"""The tick chain: sub-minute sampling without paying Lambda for the wait between samples.

Each tick (an SQS message its event source mapping delivers) samples once and sends the next tick with
``DelaySeconds`` = ``sampling.interval_seconds``, so four short invocations a minute replace one that
sleeps for most of a minute, and the collector samples every interval even when every queue is idle.

One chain at a time: the store keeps the current chain's token; a tick whose token is not the current
one is dropped (a duplicate delivery, a superseded chain), and every accepted tick hands on a fresh
token. The one-minute schedule restarts a chain that stopped (no tick for ``restart_after_seconds``):
its new token supersedes any survivor, so chains never multiply.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tidegauge.names import queue_name

if TYPE_CHECKING:
    from tidegauge.store import Store

logger = logging.getLogger(__name__)

TOKEN_MARKER = "tick_token"
"""Store marker: the token the next accepted tick must carry."""
TICKED_MARKER = "ticked_at"
"""Store marker: when the chain last handed on a tick (Unix seconds)."""
MESSAGE_KIND = "tidegauge.tick"
MAX_DELAY_SECONDS = 900
"""SQS's longest DelaySeconds."""
RESTART_SLACK_SECONDS = 10.0
"""Allowance on top of two intervals before the schedule calls a chain broken (delivery, a slow round)."""


class TickQueue(Protocol):
    """The part of boto3's SQS client the chain uses."""

    def send_message(self, **kwargs: Any) -> Any: ...


def marker_source(kind: str, queue_url: str) -> str:
    """The store name a chain's markers live under: its kind and tick queue's name (one chain per queue,
    so two stacks sharing a Redis keep two chains); never a source name (those have no dot)."""
    return f"tick.{kind}.{queue_name(queue_url)}"


def tick_body(token: float) -> str:
    return json.dumps({"tidegauge": MESSAGE_KIND, "token": token})


def parse_tick_body(body: str) -> float | None:
    """The token of a tick message body, or None when the body is not a tick."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, Mapping) or document.get("tidegauge") != MESSAGE_KIND:
        return None
    token = document.get("token")
    if isinstance(token, bool) or not isinstance(token, int | float):
        return None
    return float(token)


@dataclass(frozen=True, slots=True)
class Handoff:
    """What the chain did: ``accepted`` a tick / ``restarted`` the chain, and the next tick's delay."""

    action: str
    delay_seconds: int = 0

    def summary(self) -> dict[str, Any]:
        return {"action": self.action, "next_tick_delay_seconds": self.delay_seconds}


class TickChain:
    """One collector kind's chain over ``queue_url``; markers in ``store`` under :func:`marker_source`."""

    def __init__(
        self,
        store: Store,
        queue: TickQueue,
        queue_url: str,
        *,
        kind: str,
        interval_seconds: float,
        clock: Callable[[], float],
        new_token: Callable[[], float] = lambda: float(secrets.randbits(52)),
    ) -> None:
        self.store = store
        self.queue = queue
        self.queue_url = queue_url
        self.source = marker_source(kind, queue_url)
        self.delay_seconds = min(MAX_DELAY_SECONDS, max(0, round(interval_seconds)))
        self.restart_after_seconds = 2 * interval_seconds + RESTART_SLACK_SECONDS
        self.clock = clock
        self.new_token = new_token

    def accept(self, tokens: Iterable[float]) -> Handoff:
        """A tick arrived: hand the chain on if it carries the current token, else drop it."""
        current = self.store.read_marker(self.source, TOKEN_MARKER)
        if current is None or current not in set(tokens):
            logger.info("tick dropped: not the current chain's (a duplicate or a superseded chain)")
            return Handoff("dropped")
        return Handoff("accepted", self._hand_on())

    def restart_if_broken(self) -> Handoff:
        """The schedule's check: start a new chain when none handed on a tick recently."""
        ticked = self.store.read_marker(self.source, TICKED_MARKER)
        if ticked is not None and self.clock() - ticked <= self.restart_after_seconds:
            return Handoff("alive")
        logger.warning(
            "tick chain %s: no tick for %s; starting a new chain",
            self.source,
            "ever" if ticked is None else f"{self.clock() - ticked:.0f} s",
        )
        return Handoff("restarted", self._hand_on())

    def _hand_on(self) -> int:
        """Write a fresh token (superseding every other chain), then send the tick that carries it.

        Raises what SendMessage raises; the chain is then broken until the schedule restarts it.
        """
        token = self.new_token()
        self.store.write_marker(self.source, TOKEN_MARKER, token)
        self.queue.send_message(
            QueueUrl=self.queue_url, MessageBody=tick_body(token), DelaySeconds=self.delay_seconds
        )
        self.store.write_marker(self.source, TICKED_MARKER, self.clock())
        return self.delay_seconds
