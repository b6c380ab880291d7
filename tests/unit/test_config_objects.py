"""The ``objects:`` section: which series describe which Kubernetes objects, and its field-named errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tidegauge.config import Config, ConfigError, ObjectRule, Template, parse_config
from tidegauge.config.objects import NAMESPACES, built_in_resource

BASE: dict[str, Any] = {
    "version": 1,
    "redis": {"url": "redis://127.0.0.1:6379/0"},
    "sources": [{"name": "orders", "type": "sqs", "region": "eu-west-1", "queues": {"names": ["orders"]}}],
}


def with_objects(*rules: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["objects"] = list(rules)
    return data


def issues_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(data)
    return [str(issue) for issue in caught.value.errors]


def test_an_explicit_rule_names_one_object_with_its_selector() -> None:
    config = Config.from_mapping(
        with_objects(
            {
                "metric": "sqs_messages",
                "selector": "queue=orders",
                "resource": "deployment",
                "namespace": "shop",
                "name": "orders-worker",
            }
        )
    )
    (rule,) = config.objects
    assert rule == ObjectRule(
        metric="sqs_messages",
        resource=built_in_resource("deployments.apps"),  # type: ignore[arg-type]
        name=Template("orders-worker"),
        namespace=Template("shop"),
        selector="queue=orders",
    )
    assert (rule.resource.kind, rule.resource.api_version) == ("Deployment", "apps/v1")


def test_a_template_takes_one_label_inside_fixed_text() -> None:
    config = Config.from_mapping(
        with_objects(
            {"metric": "sqs_messages", "resource": "sts", "namespace": "{team}", "name": "{queue}-consumer"}
        )
    )
    (rule,) = config.objects
    assert rule.name == Template("", "queue", "-consumer")
    assert rule.name.render({"queue": "orders"}) == "orders-consumer"
    assert rule.name.label_value("orders-consumer") == "orders"
    assert rule.name.label_value("orders-worker") is None
    assert rule.namespace is not None
    assert rule.namespace.render({"queue": "x"}) is None


def test_a_namespace_rule_has_no_namespace_field() -> None:
    (rule,) = Config.from_mapping(
        with_objects({"metric": "sqs_messages", "resource": "ns", "name": "{namespace}"})
    ).objects
    assert rule.resource is NAMESPACES
    assert rule.namespace is None
    issues = issues_of(
        with_objects({"metric": "sqs_messages", "resource": "namespaces", "namespace": "a", "name": "a"})
    )
    assert issues == [
        "objects[0].namespace: is set, but a Namespace is named by name alone. Fix: remove namespace; "
        'name the Namespace with name (e.g. name: "{namespace}")'
    ]


def test_another_resource_needs_its_kind_and_api_version() -> None:
    rule = {"metric": "sqs_messages", "resource": "queues.example.com", "namespace": "a", "name": "{queue}"}
    (issue,) = issues_of(with_objects(rule))
    assert issue.startswith(
        "objects[0].resource: 'queues.example.com' is not a built-in resource, so kind and api_version "
        "must be given. Fix: set kind"
    )
    (parsed,) = Config.from_mapping(
        with_objects({**rule, "kind": "Queue", "api_version": "example.com/v1"})
    ).objects
    assert (parsed.resource.resource, parsed.resource.kind) == ("queues.example.com", "Queue")
    (issue,) = issues_of(with_objects({**rule, "kind": "Queue", "api_version": "other.io/v1"}))
    assert issue.startswith("objects[0].api_version: 'other.io/v1' is not the apiVersion of")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"resource": "pods", "namespace": "a", "name": "{pod}"}, "objects[0].metric: is required"),
        (
            {"metric": "sqs_mesages", "resource": "pods", "namespace": "a", "name": "{pod}"},
            "objects[0].metric: no source produces metric 'sqs_mesages' (did you mean 'sqs_messages'?)",
        ),
        ({"metric": "sqs_messages", "namespace": "a", "name": "x"}, "objects[0].resource: is required"),
        (
            {"metric": "sqs_messages", "resource": "deployments.apps", "name": "x"},
            "objects[0].namespace: is required",
        ),
        (
            {"metric": "sqs_messages", "resource": "services", "namespace": "a"},
            "objects[0].name: is required",
        ),
        (
            {"metric": "sqs_messages", "resource": "pods", "namespace": "a", "name": "worker-1"},
            "objects[0].name: 'worker-1' names one pod",
        ),
        (
            {"metric": "sqs_messages", "resource": "svc", "namespace": "a", "name": "{a}-{b}"},
            "objects[0].name: '{a}-{b}' has 2 labels in braces, not one",
        ),
        (
            {"metric": "sqs_messages", "resource": "svc", "namespace": "a", "name": "{bad key}"},
            "objects[0].name: {bad key}: 'bad key' is not a valid label key",
        ),
        (
            {"metric": "sqs_messages", "resource": "svc", "namespace": "Shop", "name": "x"},
            "objects[0].namespace: 'Shop' is not a valid Kubernetes namespace name or template",
        ),
        (
            {"metric": "sqs_messages", "resource": "svc", "namespace": "a", "name": "x", "selector": "a in"},
            "objects[0].selector: selector 'a in':",
        ),
        (
            {"metric": "sqs_messages", "resource": "svc", "kind": "Service", "namespace": "a", "name": "x"},
            "objects[0].kind: is set, but services is built in (Service, v1). Fix: remove kind",
        ),
        (
            {"metric": "sqs_messages", "resource": "svc", "namespace": "a", "name": "x", "nmae": "y"},
            "objects[0].nmae: unknown key",
        ),
    ],
)
def test_a_bad_rule_is_an_issue_naming_its_field_and_fix(rule: dict[str, Any], expected: str) -> None:
    (issue,) = issues_of(with_objects(rule))
    assert issue.startswith(expected), issue
    assert ". Fix: " in issue


def test_objects_must_be_a_list_of_mappings() -> None:
    data = copy.deepcopy(BASE)
    data["objects"] = {"metric": "sqs_messages"}
    (issue,) = issues_of(data)
    assert issue.startswith("objects: expected a list")
    (issue,) = issues_of(with_objects("deployments"))  # type: ignore[arg-type]
    assert issue.startswith("objects[0]: expected a mapping")


def test_yaml_text_with_objects_loads() -> None:
    text = """
version: 1
redis: {url: "redis://127.0.0.1:6379/0"}
sources: [{name: orders, type: sqs, region: eu-west-1, queues: {names: [orders]}}]
objects:
  - {metric: sqs_messages, resource: deployments.apps, namespace: shop, name: "{queue}"}
"""
    (rule,) = parse_config(text, environ={}).objects
    assert str(rule.name) == "{queue}"
