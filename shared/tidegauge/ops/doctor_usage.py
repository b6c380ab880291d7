"""``doctor``'s checks of use: RBAC, the whole path as the HPA sees it, the server's own view, each HPA."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from tidegauge.config import Defaults
from tidegauge.ops.cluster import Cluster, ClusterError, JsonObject
from tidegauge.ops.doctor_apiservice import Chain
from tidegauge.ops.findings import Finding, failed, passed, warned
from tidegauge.ops.hpa_reading import EXTERNAL_PREFIX, MetricReading, hpa_events, metric_readings

HPA_CONTROLLER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
DEFAULT_MAX_AGE_SECONDS = Defaults().max_age_seconds
"""The server's staleness rule when no config is given (as ``tidegauge metrics`` uses it)."""
MaxAge = Callable[[str], float]
"""A metric's max age (the server's staleness rule) in seconds."""


def _service_account_groups(user: str) -> list[str]:
    namespace = user.split(":")[2]
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]


def _review(cluster: Cluster, user: str, attributes: JsonObject) -> tuple[bool, str]:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": _service_account_groups(user), "resourceAttributes": attributes},
    }
    answer = cluster.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
    status = answer.get("status", {})
    return bool(status.get("allowed")), str(status.get("reason", ""))


def check_rbac(cluster: Cluster, chain: Chain) -> list[Finding]:
    """SubjectAccessReviews for the HPA controller and tidegauge's ServiceAccount."""
    account = _service_account(chain)
    wanted: list[tuple[str, JsonObject, str]] = [
        (
            HPA_CONTROLLER,
            {"group": group, "resource": "*", "verb": "list"},
            "kubectl apply -k k8s/base  (ClusterRole tidegauge-external-metrics-reader and its binding"
            + ("; add custom.metrics.k8s.io to it)" if group.startswith("custom") else ")"),
        )
        for group in chain.owned
    ]
    wanted += [
        (
            account,
            {"group": "authentication.k8s.io", "resource": "tokenreviews", "verb": "create"},
            "bind ClusterRole system:auth-delegator (k8s/base/cluster-role-binding-delegator.yaml)",
        ),
        (
            account,
            {"group": "authorization.k8s.io", "resource": "subjectaccessreviews", "verb": "create"},
            "bind ClusterRole system:auth-delegator (k8s/base/cluster-role-binding-delegator.yaml)",
        ),
        (
            account,
            {
                "group": "",
                "resource": "configmaps",
                "verb": "get",
                "namespace": "kube-system",
                "name": "extension-apiserver-authentication",
            },
            "RoleBinding in kube-system to extension-apiserver-authentication-reader "
            "(k8s/base/role-binding-auth-reader.yaml)",
        ),
    ]
    findings = []
    for user, attributes, fix in wanted:
        what = f"{attributes['verb']} {attributes.get('group') or 'core'}/{attributes['resource']}"
        if attributes.get("name"):
            what += f" {attributes['namespace']}/{attributes['name']}"
        check = f"RBAC {user} may {what}"
        try:
            allowed, reason = _review(cluster, user, attributes)
        except ClusterError as error:
            findings.append(
                warned(
                    check, f"cannot ask: {error}", "run doctor as a user who may create SubjectAccessReviews"
                )
            )
            continue
        findings.append(
            passed(check, "allowed") if allowed else failed(check, f"denied {reason}".strip(), fix)
        )
    return findings


def _service_account(chain: Chain) -> str:
    name = "tidegauge"
    if chain.pods:
        name = str(chain.pods[0].get("spec", {}).get("serviceAccountName") or "default")
    return f"system:serviceaccount:{chain.service_namespace}:{name}"


def check_path(cluster: Cluster, chain: Chain, hpas: Sequence[JsonObject]) -> list[Finding]:
    """Discovery and one metric GET through the kube-apiserver, as the HPA controller makes them."""
    if "external.metrics.k8s.io" not in chain.owned:
        return []
    findings = []
    try:
        discovery = cluster.get(EXTERNAL_PREFIX)
        resources = [r.get("name") for r in discovery.get("resources") or []]
        findings.append(passed(f"GET {EXTERNAL_PREFIX}", f"{discovery.get('kind')} with {resources}"))
    except ClusterError as error:
        return [failed(f"GET {EXTERNAL_PREFIX}", str(error), "see the APIService Available check above")]
    for hpa in hpas:
        for reading in metric_readings(hpa, {}):
            if reading.source == "External":
                namespace = str(hpa.get("metadata", {}).get("namespace", ""))
                findings.append(_metric_get(cluster, namespace, reading, "whole path"))
                return findings
    return findings


def _metric_get(cluster: Cluster, namespace: str, reading: MetricReading, label: str) -> Finding:
    path = f"{EXTERNAL_PREFIX}/namespaces/{namespace}/{reading.name}"
    query = {"labelSelector": reading.selector} if reading.selector else {}
    check = f"{label}: GET {path}" + (f"?labelSelector={reading.selector}" if reading.selector else "")
    try:
        answer = cluster.get(path, query)
    except ClusterError as error:
        message = str(error)
        if "stale" in message:
            fix = "the collectors stopped writing it: `tidegauge status`; their logs (CloudWatch Logs)"
        elif "no series matching" in message:
            fix = f"`tidegauge metrics {reading.name}` lists its series; fix the HPA's metric selector"
        elif error.code == 404:
            fix = f"`tidegauge metrics` lists what is served; check the name {reading.name!r} and exposure"
        else:
            fix = "see the APIService and server checks above"
        return failed(check, message, fix)
    items = answer.get("items") or []
    if not items:
        return failed(check, "no items: the HPA fails with 'no metrics returned'", "check the selector")
    return passed(check, f"{len(items)} item(s)")


def parse_metrics_text(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A Prometheus text exposition as name -> [(labels, value)]."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or match is None:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group("labels") or ""))
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        samples.setdefault(match.group("name"), []).append((labels, value))
    return samples


def check_server(
    cluster: Cluster, chain: Chain, statuses: dict[str, Any] | None, max_age: MaxAge
) -> list[Finding]:
    """The server's readiness and /metrics through the API server's service proxy; collector statuses."""
    namespace, name = chain.service_namespace, chain.service_name
    proxy = f"/api/v1/namespaces/{namespace}/services"
    findings = []
    try:
        ready = cluster.get_text(f"{proxy}/https:{name}:443/proxy/readyz")
        findings.append(passed("server /readyz", ready.strip()[:60] or "ok"))
    except ClusterError as error:
        findings.append(failed("server /readyz", str(error), f"kubectl -n {namespace} logs deploy/{name}"))
    try:
        exposition = parse_metrics_text(cluster.get_text(f"{proxy}/{name}:metrics/proxy/metrics"))
    except ClusterError as error:
        findings.append(warned("server /metrics", str(error), "check the Service's `metrics` port (9090)"))
        exposition = {}
    if exposition:
        redis_up = [value for _, value in exposition.get("tidegauge_redis_up", [])]
        if redis_up and redis_up[0] == 1:
            findings.append(passed("Redis from the server", "tidegauge_redis_up 1"))
        elif redis_up:
            findings.append(
                failed(
                    "Redis from the server",
                    "tidegauge_redis_up 0: the server's last Redis request failed",
                    "check the Redis URL Secret and the network policy; "
                    f"kubectl -n {namespace} logs deploy/{name}",
                )
            )
        for labels, age in exposition.get("tidegauge_metric_newest_sample_age_seconds", []):
            metric = labels.get("metric", "?")
            check = f"newest sample of {metric}"
            limit = max_age(metric)
            if age > limit:
                findings.append(
                    warned(
                        check,
                        f"{age:.0f} s old (max age {limit:g} s): stale",
                        "`tidegauge status`; collector logs",
                    )
                )
            else:
                findings.append(passed(check, f"{age:.0f} s old"))
    for source, status in sorted((statuses or {}).items()):
        check = f"collector {source}"
        if status.ok:
            findings.append(passed(check, f"last run ok, {status.samples_written} samples"))
        else:
            findings.append(
                failed(
                    check,
                    "last run failed: " + "; ".join(status.errors)[:300],
                    "`tidegauge status`; collector logs",
                )
            )
    return findings


def check_hpas(cluster: Cluster, chain: Chain, hpas: Sequence[JsonObject]) -> list[Finding]:
    """Each HPA on tidegauge's metrics: the metric exists, its selector matches fresh series, conditions."""
    findings = []
    for hpa in hpas:
        metadata = hpa.get("metadata", {})
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        readings = [r for r in metric_readings(hpa, {}) if r.source == "External"]
        if not readings or "external.metrics.k8s.io" not in chain.owned:
            continue
        for reading in readings:
            findings.append(
                _metric_get(cluster, namespace, reading, f"HPA {namespace}/{name} metric {reading.name}")
            )
        findings.extend(_conditions(hpa, namespace, name))
        findings.extend(_warning_events(cluster, namespace, name))
    return findings


_PLAIN = {
    "FailedGetExternalMetric": "the HPA could not read the metric, so it holds the replica count",
    "InvalidSelector": "the HPA's selector is not valid",
    "FailedGetScale": "the HPA cannot read its target's scale subresource",
    "ScalingDisabled": "the target is at 0 replicas: the HPA does nothing until it is scaled up",
}


def _conditions(hpa: JsonObject, namespace: str, name: str) -> list[Finding]:
    findings = []
    for condition in hpa.get("status", {}).get("conditions") or []:
        kind = condition.get("type")
        if kind not in ("ScalingActive", "AbleToScale"):
            continue
        reason = str(condition.get("reason", ""))
        check = f"HPA {namespace}/{name} {kind}"
        saw = f"{condition.get('status')} ({reason}): {condition.get('message', '')}"
        if condition.get("status") == "True":
            findings.append(passed(check, saw))
        else:
            plain = _PLAIN.get(reason, "the HPA is not scaling")
            findings.append(
                failed(
                    check,
                    f"{saw} - {plain}",
                    f"kubectl -n {namespace} describe hpa {name}; "
                    f"tidegauge explain hpa {name} -n {namespace}",
                )
            )
    return findings


def _warning_events(cluster: Cluster, namespace: str, name: str) -> list[Finding]:
    warnings = [e for e in hpa_events(cluster, namespace, name) if e.get("type") == "Warning"]
    if not warnings:
        return []
    latest = warnings[-1]
    return [
        warned(
            f"HPA {namespace}/{name} events",
            f"{len(warnings)} warning(s), latest {latest.get('reason')}: {latest.get('message', '')}",
            f"kubectl -n {namespace} get events --field-selector involvedObject.name={name}",
        )
    ]
