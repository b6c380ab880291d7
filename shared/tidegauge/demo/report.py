"""The end of a run: did the loop close, and the machine-readable ``result.json``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidegauge.demo.config import DemoTiming
from tidegauge.demo.driver import HpaSync
from tidegauge.demo.scenario import Scenario
from tidegauge.demo.timeline import TimelinePoint, TimelineStats, timeline_stats


@dataclass(frozen=True)
class Verdict:
    """Whether the HPA scaled up with the backlog and back down after it; ``problems`` says why not."""

    closed: bool
    problems: tuple[str, ...]


def verdict(timeline: Sequence[TimelinePoint]) -> Verdict:
    """The loop closed when replicas rose at least once and fell at least once."""
    if not timeline:
        return Verdict(False, ("the run recorded no steps",))
    stats = timeline_stats(timeline)
    problems: list[str] = []
    if stats.scale_ups == 0:
        problems.append(
            f"the HPA never scaled up (peak backlog {stats.peak_backlog}); see server.log and collectors.log"
        )
    if stats.scale_downs == 0:
        drained = "the backlog never drained" if stats.drain_seconds is None else "after the drain"
        problems.append(f"the HPA never scaled down ({drained}); a longer --duration leaves more room")
    return Verdict(not problems, tuple(problems))


def write_result(
    path: Path,
    *,
    scenario: Scenario,
    timing: DemoTiming,
    timeline: Sequence[TimelinePoint],
    syncs: Sequence[HpaSync],
    outcome: Verdict,
    aws_calls: Mapping[str, Mapping[str, int]],
    pids: Mapping[str, int],
    wall_seconds: Mapping[str, float],
    extra: Mapping[str, Any],
) -> Path:
    """Write everything a test or a notebook needs to replay the run's story."""
    stats: TimelineStats | None = timeline_stats(timeline) if timeline else None
    document = {
        "closed_loop": outcome.closed,
        "problems": list(outcome.problems),
        "scenario": dataclasses.asdict(scenario),
        "timing": dataclasses.asdict(timing),
        "wall_seconds": dict(wall_seconds),
        "stats": None if stats is None else dataclasses.asdict(stats),
        "aws_calls": {group: dict(calls) for group, calls in aws_calls.items()},
        "pids": dict(pids),
        **extra,
        "syncs": [dataclasses.asdict(sync) for sync in syncs],
        "timeline": [dataclasses.asdict(point) for point in timeline],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
