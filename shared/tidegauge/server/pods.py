"""Which pods exist, with their labels: a list + watch cache of the kube-apiserver's pods.

Pods metrics (``pods/*?labelSelector=…``) need the pods a selector selects; asking the kube-apiserver
per request would put the HPA's every sync on it. Instead one background task lists the pods (paged)
and then watches them, as an informer does, and requests read this cache. Memory is bounded: only
(namespace, name, labels) is kept, as metadata-only objects (``PartialObjectMetadata``) are asked
for, and at most ``max_pods`` pods are held (beyond, new pods are left out and that is logged).
A watch that ends is resumed from its last ``resourceVersion``; an expired one (410) relists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.selectors import Selector

logger = logging.getLogger(__name__)
_rate_limited = RateLimitedLog(logger, 60.0)

DEFAULT_MAX_PODS = 100_000
RETRY_SECONDS = 5.0


class PodSource(Protocol):
    """The two kube-apiserver calls the cache makes (see :class:`~tidegauge.server.kube.KubeClient`)."""

    async def list_pods(self, continue_token: str | None) -> dict[str, Any]: ...
    def watch_pods(self, resource_version: str) -> AsyncGenerator[dict[str, Any], None]: ...


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class PodCache:
    """Pods by namespace (name -> labels), kept current by :meth:`run`."""

    def __init__(
        self,
        source: PodSource,
        *,
        max_pods: int = DEFAULT_MAX_PODS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._source = source
        self._max_pods = max_pods
        self._retry_seconds = retry_seconds
        self._pods: dict[str, dict[str, dict[str, str]]] = {}
        self._count = 0
        self.synced = asyncio.Event()
        """Set once the first list is complete: until then the cache cannot answer."""
        self.left_out = 0
        """Pods not held because ``max_pods`` were held already (since the last list)."""
        self.resource_version = ""
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return self._count

    async def changed(self) -> None:
        """Wait for the next change (a list completed, a watch event applied): for tests and tools."""
        await self._changed.wait()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def select(self, namespace: str, selector: Selector) -> list[str]:
        """Names of the pods in ``namespace`` whose labels ``selector`` matches, sorted."""
        pods = self._pods.get(namespace, {})
        return sorted(name for name, labels in pods.items() if selector.matches(labels))

    async def run(self) -> None:
        """List, then watch, for ever (a background task; cancel it to stop)."""
        while True:
            try:
                await self._list()
                while True:
                    if not await self._watch():
                        # A watch that ended with no event (idle, or an apiserver closing it at once):
                        # resume after a pause, so a misbehaving one costs no busy loop. Events of the
                        # pause are not lost: the next watch starts from the same resourceVersion.
                        await asyncio.sleep(self._retry_seconds)
            except WatchExpired:
                logger.info("pod watch expired at resourceVersion %s: listing again", self.resource_version)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _rate_limited.warning(
                    "pod list/watch failed, retrying in %g s: %s", self._retry_seconds, error
                )
                await asyncio.sleep(self._retry_seconds)

    async def _list(self) -> None:
        pods: dict[str, dict[str, dict[str, str]]] = {}
        count = left_out = 0
        continue_token: str | None = None
        while True:
            page = await self._source.list_pods(continue_token)
            for item in page.get("items") or []:
                namespace, name, labels = _identity(item)
                if not name:
                    continue
                if count >= self._max_pods:
                    left_out += 1
                    continue
                pods.setdefault(namespace, {})[name] = labels
                count += 1
            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue") or None
            if continue_token is None:
                self.resource_version = str(metadata.get("resourceVersion") or "")
                break
        self._pods, self._count, self.left_out = pods, count, left_out
        if left_out:
            logger.warning("holding %d pods, the cap: %d more left out of pods metrics", count, left_out)
        self.synced.set()
        self._touch()
        logger.info("pods listed: %d at resourceVersion %s", count, self.resource_version)

    async def _watch(self) -> int:
        """Apply one watch's events until it ends; how many there were.

        The stream is closed on every way out (an ERROR event raises inside the loop): an abandoned
        async generator would keep its HTTP connection open until the garbage collector finds it.
        """
        events = 0
        async with contextlib.aclosing(self._source.watch_pods(self.resource_version)) as stream:
            async for event in stream:
                events += 1
                kind = event.get("type")
                item = event.get("object") or {}
                if kind == "ERROR":
                    if item.get("code") == 410:
                        raise WatchExpired(str(item.get("message", "")))
                    raise RuntimeError(f"pod watch error: {str(item)[:300]}")
                version = (item.get("metadata") or {}).get("resourceVersion")
                if version:
                    self.resource_version = str(version)
                if kind in ("ADDED", "MODIFIED"):
                    self._put(*_identity(item))
                elif kind == "DELETED":
                    namespace, name, _ = _identity(item)
                    self._remove(namespace, name)
                self._touch()
            return events

    def _put(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        if not name:
            return
        pods = self._pods.setdefault(namespace, {})
        if name not in pods:
            if self._count >= self._max_pods:
                self.left_out += 1
                _rate_limited.warning(
                    "holding %d pods, the cap: pod %s/%s left out", self._count, namespace, name
                )
                return
            self._count += 1
        pods[name] = labels

    def _remove(self, namespace: str, name: str) -> None:
        pods = self._pods.get(namespace)
        if pods is not None and pods.pop(name, None) is not None:
            self._count -= 1
            if not pods:
                del self._pods[namespace]


def _identity(item: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    metadata = item.get("metadata") or {}
    labels = metadata.get("labels") or {}
    return (
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
        {str(key): str(value) for key, value in labels.items()},
    )
