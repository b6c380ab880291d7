"""Authorization: ``system:masters`` always; else a SubjectAccessReview (cached) or allow-authenticated.

Attributes follow k8s.io/apiserver's request info: an external metric read is a resource request
(verb ``list``, group ``external.metrics.k8s.io``, version ``v1beta1``, resource = the metric name,
namespace from the path); discovery and OpenAPI are non-resource ``{"path", "verb": "get"}``.

A custom metric read is what ``RequestInfoFactory`` (k8s.io/apiserver pkg/endpoints/request/
requestinfo.go, which custom-metrics-apiserver does not override) makes of its path
``namespaces/{ns}/{resource}/{name}/{metric}``: verb ``get`` (a name is present, ``*`` included),
resource = the path's resource as sent (``deployments.apps``), name = the object's name,
subresource = the metric; for ``namespaces/{ns}/metrics/{metric}``: resource ``metrics``, name = the
metric, no subresource. RBAC rules thus say ``resources: ["deployments.apps/http_requests"]`` or ``*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tidegauge.server.authn import UserInfo
from tidegauge.server.cache import TtlCache

logger = logging.getLogger(__name__)

MASTERS_GROUP = "system:masters"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request does, as a SubjectAccessReview describes it."""

    verb: str
    path: str
    namespace: str | None = None
    group: str | None = None
    version: str | None = None
    resource: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def is_resource_request(self) -> bool:
        return self.resource is not None

    def review_attributes(self) -> dict[str, Any]:
        if self.is_resource_request:
            attributes = {
                "namespace": self.namespace or "",
                "verb": self.verb,
                "group": self.group or "",
                "version": self.version or "",
                "resource": self.resource,
            }
            if self.name:
                attributes["name"] = self.name
            if self.subresource:
                attributes["subresource"] = self.subresource
            return {"resourceAttributes": attributes}
        return {"nonResourceAttributes": {"path": self.path, "verb": self.verb}}

    def denial(self, user: UserInfo, reason: str = "") -> str:
        """A message in upstream's words, e.g. ``User "bob" cannot list resource "m" in API group …``."""
        if self.is_resource_request:
            resource = self.resource or ""
            if self.subresource:
                resource = f"{resource}/{self.subresource}"
            named = f" {_quoted(self.name)}" if self.name else ""
            message = (
                f"{self.resource}.{self.group}{named} is forbidden: User {_quoted(user.name)} cannot "
                f"{self.verb} resource {_quoted(resource)} in API group {_quoted(self.group or '')} "
                f"in the namespace {_quoted(self.namespace or '')}"
            )
        else:
            message = f"forbidden: User {_quoted(user.name)} cannot {self.verb} path {_quoted(self.path)}"
        return f"{message}: {reason}" if reason else message


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"')[:200] + '"'


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


class AuthorizationUnavailable(Exception):
    """The authorizer could not decide (the SubjectAccessReview call failed)."""


class Authorizer(Protocol):
    async def authorize(self, user: UserInfo, attributes: Attributes) -> Decision: ...


class AccessReviewer(Protocol):
    async def create_subject_access_review(self, spec: dict[str, Any]) -> dict[str, Any]: ...


_MASTERS = Decision(True, "system:masters")


class AlwaysAllowAuthenticated:
    """Every authenticated user may do everything (for local use)."""

    async def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        return Decision(not user.anonymous, "" if not user.anonymous else "anonymous")


class WebhookAuthorizer:
    """SubjectAccessReview per (user, attributes), allow and deny cached ``ttl`` seconds."""

    def __init__(
        self,
        reviewer: AccessReviewer,
        *,
        cache_ttl_seconds: float = 10.0,
        cache_size: int = 10_000,
        record: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self._reviewer = reviewer
        self._cache: TtlCache[tuple[UserInfo, Attributes], Decision] = TtlCache(cache_ttl_seconds, cache_size)
        self._record = record

    async def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        if MASTERS_GROUP in user.groups:
            self._record("allowed-masters")
            return _MASTERS
        key = (user, attributes)
        cached = self._cache.get(key)
        if cached is not None:
            self._record("allowed-cached" if cached.allowed else "denied-cached")
            return cached
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "extra": {name: list(values) for name, values in user.extra},
            **attributes.review_attributes(),
        }
        if user.uid:
            spec["uid"] = user.uid
        try:
            status = await self._reviewer.create_subject_access_review(spec)
        except Exception as error:  # the caller answers 503; the decision is not cached
            self._record("error")
            raise AuthorizationUnavailable(str(error)) from error
        decision = Decision(
            bool(status.get("allowed")) and not status.get("denied"), str(status.get("reason", ""))
        )
        self._cache.put(key, decision)
        self._record("allowed" if decision.allowed else "denied")
        return decision
