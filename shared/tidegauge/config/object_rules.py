"""The ``objects:`` section: which series describe which Kubernetes objects, validated rule by rule."""

from __future__ import annotations

import re

from tidegauge import names
from tidegauge.config.messages import did_you_mean
from tidegauge.config.objects import (
    BUILT_IN_RESOURCES,
    NAMESPACES,
    PODS,
    ObjectRule,
    ResourceType,
    Template,
    built_in_resource,
)
from tidegauge.config.schema import OBJECT_KEYS
from tidegauge.config.section import Section, as_section

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME_TEXT = re.compile(r"[a-z0-9.-]*")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")
_API_VERSION = re.compile(r"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?")
_KNOWN = ", ".join(resource.resource for resource in BUILT_IN_RESOURCES)
_TEMPLATE_FIX = 'use a name (e.g. orders-worker) or one label in braces, e.g. "{app}" or "{app}-worker"'


def parse_objects(root: Section, produced: set[str]) -> tuple[ObjectRule, ...]:
    """The ``objects:`` list as rules; every problem is an issue naming its field."""
    elements = root.items("objects")
    if elements is None:
        return ()
    rules: list[ObjectRule] = []
    for path, raw in elements:
        section = as_section(root.issues, path, raw, OBJECT_KEYS)
        if section is not None:
            rule = _parse_rule(section, produced)
            if rule is not None:
                rules.append(rule)
    return tuple(rules)


def _parse_rule(section: Section, produced: set[str]) -> ObjectRule | None:
    metric = section.string("metric", required=True, grammar=names.METRIC_NAME)
    if metric is not None and metric not in produced:
        section.issues.add(
            section.at("metric"),
            f"no source produces metric {metric!r}{did_you_mean(metric, produced)}",
            f"use a metric a source produces: {', '.join(sorted(produced)) or 'none yet'}",
        )
    resource = _parse_resource(section)
    name = _parse_template(section, "name", required=True)
    namespace = _parse_namespace(section, resource)
    if resource is PODS and name is not None and name.label is None:
        section.issues.add(
            section.at("name"),
            f"{str(name)!r} names one pod, but pod metrics come from a label holding each pod's name",
            'use the label that holds the pod name, e.g. name: "{pod}"',
        )
    selector = _parse_selector(section)
    if metric is None or resource is None or name is None:
        return None
    if resource.namespaced and namespace is None:
        return None
    return ObjectRule(metric=metric, resource=resource, name=name, namespace=namespace, selector=selector)


def _parse_resource(section: Section) -> ResourceType | None:
    fix = f"use one of {_KNOWN}, or <plural>.<group> with kind and api_version for another resource"
    text = section.string("resource", required=True, fix=fix)
    kind = section.string("kind")
    api_version = section.string("api_version")
    if text is None:
        return None
    known = built_in_resource(text)
    if known is not None:
        for key, value in (("kind", kind), ("api_version", api_version)):
            if value is not None:
                section.issues.add(
                    section.at(key),
                    f"is set, but {known.resource} is built in ({known.kind}, {known.api_version})",
                    f"remove {key}",
                )
        return known
    plural, _, group = text.partition(".")
    valid = bool(_NAME_TEXT.fullmatch(text)) and bool(plural) and names.DNS_SUBDOMAIN.accepts(text)
    if not valid:
        section.issues.add(section.at("resource"), f"{text!r} is not a resource name", fix)
        return None
    if kind is None or api_version is None:
        given = (("kind", kind), ("api_version", api_version))
        missing = " and ".join(key for key, value in given if not value)
        example = f"{group or 'example.com'}/v1"
        section.issues.add(
            section.at("resource"),
            f"{text!r} is not a built-in resource, so {missing} must be given",
            f"set kind (e.g. Queue) and api_version (e.g. {example}), or use one of {_KNOWN}",
        )
        return None
    if not _KIND.fullmatch(kind):
        fix = "use the CamelCase kind, e.g. Queue"
        section.issues.add(section.at("kind"), f"{kind!r} is not a kind", fix)
        return None
    if not _API_VERSION.fullmatch(api_version) or api_version.partition("/")[0] != (group or api_version):
        expected = f"{group}/v1" if group else "v1"
        section.issues.add(
            section.at("api_version"),
            f"{api_version!r} is not the apiVersion of {text!r}",
            f"use <group>/<version> with the resource's group, e.g. {expected}",
        )
        return None
    return ResourceType(text, kind, api_version)


def _parse_namespace(section: Section, resource: ResourceType | None) -> Template | None:
    if resource is NAMESPACES:
        if section.has("namespace"):
            section.issues.add(
                section.at("namespace"),
                "is set, but a Namespace is named by name alone",
                'remove namespace; name the Namespace with name (e.g. name: "{namespace}")',
            )
        return None
    return _parse_template(
        section,
        "namespace",
        required=resource is not None,
        fix='set namespace to a namespace (e.g. shop) or a label in braces (e.g. "{namespace}")',
    )


def _parse_template(
    section: Section, key: str, *, required: bool, fix: str = _TEMPLATE_FIX
) -> Template | None:
    text = section.string(key, required=required, max_length=253, fix=fix)
    if text is None:
        return None
    placeholders = list(_PLACEHOLDER.finditer(text))
    if len(placeholders) > 1:
        problem = f"{text!r} has {len(placeholders)} labels in braces, not one"
        section.issues.add(section.at(key), problem, fix)
        return None
    if not placeholders:
        template = Template(text)
        literal = text
    else:
        (found,) = placeholders
        label = found.group(1)
        if not names.LABEL_KEY.accepts(label):
            section.issues.add(section.at(key), f"{{{label}}}: {label!r} is not a valid label key", fix)
            return None
        template = Template(text[: found.start()], label, text[found.end() :])
        literal = template.prefix + "x" + template.suffix
    grammar = names.NAMESPACE if key == "namespace" else names.DNS_SUBDOMAIN
    if "{" in literal or "}" in literal or not grammar.accepts(literal):
        section.issues.add(section.at(key), f"{text!r} is not a valid {grammar.what} or template", fix)
        return None
    return template


def _parse_selector(section: Section) -> str | None:
    selector = section.string("selector", fix="remove selector to take every series of the metric")
    if selector is None:
        return None
    # Imported here, as for exposure selectors: most collectors' documents never need the parser.
    from tidegauge.selectors import SelectorError, parse_selector

    try:
        parse_selector(selector)
    except SelectorError as error:
        section.issues.add(
            section.at("selector"),
            f"selector {selector!r}: {error}",
            "use Kubernetes label-selector syntax, e.g. queue=orders,state in (visible,in_flight)",
        )
        return None
    return selector
