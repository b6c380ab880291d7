"""A fake clock for tests: wall or monotonic time that only moves when slept on."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """Time that only moves when slept on: a 60 s invocation, or a demo run, passes instantly."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
