"""Which series describe which Kubernetes objects (the ``objects:`` section), as frozen values.

The custom metrics API answers for an object (a Deployment, a Namespace, a Pod, ...); series carry
labels. An :class:`ObjectRule` says: series of ``metric`` (matching ``selector``) describe the
``resource`` object named by ``name`` in ``namespace`` — each either literal or a template taking one
label's value (``"{app}"``, ``"{app}-worker"``), so one rule maps many series to many objects.
Several series describing one object are summed (all ``state``s of a queue, all its regions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceType:
    """A Kubernetes resource as the custom metrics API names it: ``<plural>[.<group>]``, kind, apiVersion."""

    resource: str
    kind: str
    api_version: str
    short_names: tuple[str, ...] = ()

    @property
    def plural(self) -> str:
        return self.resource.partition(".")[0]

    @property
    def group(self) -> str:
        return self.resource.partition(".")[2]

    @property
    def namespaced(self) -> bool:
        """Namespaces are the one cluster-scoped object metrics can describe here."""
        return self.resource != "namespaces"

    def spellings(self) -> tuple[str, ...]:
        """Every form a client may send: plural, singular (the kind), short names; each also with group."""
        bare = (self.plural, self.kind.lower(), *self.short_names)
        if not self.group:
            return bare
        return (*bare, *(f"{name}.{self.group}" for name in bare))


BUILT_IN_RESOURCES = (
    ResourceType("deployments.apps", "Deployment", "apps/v1", ("deploy",)),
    ResourceType("statefulsets.apps", "StatefulSet", "apps/v1", ("sts",)),
    ResourceType("services", "Service", "v1", ("svc",)),
    ResourceType("ingresses.networking.k8s.io", "Ingress", "networking.k8s.io/v1", ("ing",)),
    ResourceType("namespaces", "Namespace", "v1", ("ns",)),
    ResourceType("pods", "Pod", "v1", ("po",)),
)
PODS = BUILT_IN_RESOURCES[-1]
NAMESPACES = BUILT_IN_RESOURCES[-2]


def built_in_resource(text: str) -> ResourceType | None:
    """The built-in resource ``text`` spells (plural, singular or short, with or without group)."""
    return resource_index(BUILT_IN_RESOURCES).get(text.lower())


def resource_index(resources: Iterable[ResourceType]) -> dict[str, ResourceType]:
    """Every spelling of ``resources`` -> its resource (first one wins on a clash)."""
    index: dict[str, ResourceType] = {}
    for resource in resources:
        for spelling in resource.spellings():
            index.setdefault(spelling, resource)
    return index


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    """A literal name, or ``prefix{label}suffix``: the value of one series label inside fixed text."""

    prefix: str
    label: str | None = None
    suffix: str = ""

    def render(self, labels: Mapping[str, str]) -> str | None:
        """The name for a series with ``labels`` (None if the label is missing or empty)."""
        if self.label is None:
            return self.prefix
        value = labels.get(self.label)
        return f"{self.prefix}{value}{self.suffix}" if value else None

    def label_value(self, name: str) -> str | None:
        """The label value that renders ``name``; "" for a literal that IS ``name``; None if none can."""
        if self.label is None:
            return "" if name == self.prefix else None
        if len(name) <= len(self.prefix) + len(self.suffix):
            return None
        if not (name.startswith(self.prefix) and name.endswith(self.suffix)):
            return None
        return name[len(self.prefix) : len(name) - len(self.suffix)]

    def __str__(self) -> str:
        return self.prefix if self.label is None else f"{self.prefix}{{{self.label}}}{self.suffix}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ObjectRule:
    """Series of ``metric`` that ``selector`` matches describe the object ``resource`` ``namespace/name``.

    ``namespace`` is None for Namespace objects (their ``name`` is the namespace).
    """

    metric: str
    resource: ResourceType
    name: Template
    namespace: Template | None = None
    selector: str | None = None
