"""One metric's series held in memory, indexed by label pair, so a selector costs O(answer), not O(series).

The HPA asks for one queue at a time; scanning every series of a 30,000-series metric per request is what
made a cache miss cost tens of milliseconds. Equality and ``in`` requirements (and bare ``key``) look up
the series that hold a label pair (or key); ``!=``, ``notin`` and ``!key`` cannot narrow by themselves,
so they filter the candidates another requirement found, or all series when none did. Callers still
match every candidate against the whole selector: the index only decides which series to look at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from tidegauge.selectors import Operator, Selector

T = TypeVar("T")

_NARROWING = (Operator.EQUALS, Operator.IN)


class SeriesIndex(Generic[T]):
    """Entries by canonical label string, with the label strings holding each ``(key, value)`` and key."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Mapping[str, str], T]] = {}
        self._pairs: dict[tuple[str, str], set[str]] = {}
        self._keys: dict[str, set[str]] = {}
        self._order: list[str] | None = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, label_string: object) -> bool:
        return label_string in self._entries

    def get(self, label_string: str) -> T | None:
        entry = self._entries.get(label_string)
        return None if entry is None else entry[1]

    def values(self) -> Iterator[T]:
        """Every entry, in no particular order."""
        for _labels, entry in self._entries.values():
            yield entry

    def label_strings(self) -> list[str]:
        """Every label string held, sorted (kept until the set of series changes)."""
        if self._order is None:
            self._order = sorted(self._entries)
        return self._order

    def put(self, label_string: str, labels: Mapping[str, str], entry: T) -> None:
        """Hold ``entry`` for the series ``label_string`` (whose parsed labels are ``labels``)."""
        known = self._entries.get(label_string)
        self._entries[label_string] = (labels, entry)
        if known is not None:
            return
        self._order = None
        for pair in labels.items():
            self._pairs.setdefault(pair, set()).add(label_string)
            self._keys.setdefault(pair[0], set()).add(label_string)

    def remove(self, label_string: str) -> None:
        known = self._entries.pop(label_string, None)
        if known is None:
            return
        self._order = None
        for pair in known[0].items():
            _discard(self._pairs, pair, label_string)
            _discard(self._keys, pair[0], label_string)

    def dismantle(self, step: int) -> Iterator[None]:
        """Empty this index ``step`` entries at a time, yielding between steps: freeing a 30,000-series
        index at once holds the event loop for tens of milliseconds."""
        self._order = None
        for table in (self._entries, self._pairs, self._keys):
            while table:
                for _ in range(min(step, len(table))):
                    table.popitem()
                yield

    def select(self, selector: Selector) -> Iterator[T]:
        """The entries that may match ``selector`` (a superset of the matches), in label-string order."""
        candidates = self._candidates(selector)
        entries = self._entries
        for label_string in self.label_strings() if candidates is None else sorted(candidates):
            yield entries[label_string][1]

    def _candidates(self, selector: Selector) -> set[str] | None:
        """The smallest set of label strings one requirement allows, or None when none narrows."""
        best: set[str] | None = None
        for requirement in selector.requirements:
            if requirement.operator in _NARROWING:
                found = [self._pairs.get((requirement.key, value)) for value in requirement.values]
                held = [names for names in found if names]
                narrowed = held[0] if len(held) == 1 else set[str]().union(*held)
            elif requirement.operator is Operator.EXISTS:
                narrowed = self._keys.get(requirement.key, set())
            else:
                continue
            if best is None or len(narrowed) < len(best):
                best = narrowed
                if not best:
                    break
        return best


def _discard(postings: dict[Any, set[str]], key: Any, label_string: str) -> None:
    names = postings.get(key)
    if names is not None:
        names.discard(label_string)
        if not names:
            del postings[key]
