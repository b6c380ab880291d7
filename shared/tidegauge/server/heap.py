"""Keep CPython's full garbage-collection passes off the series a server holds long-term.

A view of 30,000 series holds ~220k objects the cyclic collector tracks; each full (gen 2) pass walks
them all and held the event loop for 100-300 ms during a re-read. Once a read has been swapped in,
:func:`settle` moves every tracked object into the permanent generation (``gc.freeze()``), which
collections skip. Reference counting still frees a frozen object as soon as nothing refers to it (an
index that is replaced, whose series hold no cycles); only cyclic garbage frozen by mistake would stay.
So memory is watched: when the blocks allocated grew by more than a quarter since the last full
collection (CPython's own rule for a full pass), everything is unfrozen and collected once, then frozen
again (``sys.getallocatedblocks()`` costs well under a millisecond; counting the frozen objects walks
them all, ~25 ms at 30,000 series).
Off until :func:`enable` (``tidegauge serve`` calls it): freezing a test or tool process is not ours.
"""

from __future__ import annotations

import gc
import logging
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

GROWTH_SHARE = 0.25
"""A full pass over the frozen objects once they grew by this share (CPython's rule for a full pass)."""
GROWTH_SLACK = 50_000
"""Growth below this many memory blocks never costs a full pass (a small process's noise)."""


@dataclass
class _Policy:
    enabled: bool = False
    baseline: int = 0
    """Memory blocks allocated just after the last full collection."""
    full_passes: int = 0


_policy = _Policy()


def enable() -> None:
    """Freeze what the process holds now (imports, settings) and let :func:`settle` freeze from now on."""
    _policy.enabled = True
    _full_pass()


def disable() -> None:
    """Stop freezing and hand every frozen object back to the collector (for benchmarks and tests)."""
    _policy.enabled = False
    gc.unfreeze()


def enabled() -> bool:
    return _policy.enabled


def full_passes() -> int:
    """Full collections :func:`settle` ran because the frozen objects grew (telemetry, tests)."""
    return _policy.full_passes


def freeze_young() -> None:
    """Between steps of a large read: collect young cycles, then freeze what survived (no-op when off).

    The young collection (generations 0 and 1) is cheap and frees recent cyclic garbage first, so it is
    not frozen; objects that became cyclic garbage later are found by :func:`settle`'s growth check.
    Freezing as the read goes keeps the collector's own full passes off the half-built index too."""
    if _policy.enabled:
        gc.collect(1)
        gc.freeze()


def settle() -> None:
    """Once a large read is swapped in and the old series let go: :func:`freeze_young`, then one full
    collection if memory grew by more than :data:`GROWTH_SHARE` since the last (no-op when off)."""
    if not _policy.enabled:
        return
    freeze_young()
    blocks = sys.getallocatedblocks()
    if blocks > _policy.baseline * (1 + GROWTH_SHARE) + GROWTH_SLACK:
        logger.info("memory blocks grew from %s to %s: one full collection", _policy.baseline, blocks)
        _policy.full_passes += 1
        _full_pass()


def _full_pass() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _policy.baseline = sys.getallocatedblocks()
