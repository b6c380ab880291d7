"""``tidegauge doctor``: every link from the HPA to Redis, PASS / WARN / FAIL with what it saw and the fix.

Runs from a laptop with a kubeconfig (or ``kubectl exec`` in the pod, or as ``kubectl tidegauge doctor``):
the APIServices (external, and custom where registered) and who owns them, their ``Available``
condition and ``caBundle``; the Service, its endpoints and the container's secure port; the certificate
a ready pod really presents (reached through the API server's pod port-forward, as ``kubectl
port-forward`` does; ``--pod-address HOST:PORT`` reaches it directly instead, e.g. through a
port-forward made by hand); RBAC by SubjectAccessReview; discovery and one metric GET as the HPA makes
them; the server's readiness and /metrics through the API server's service proxy (and, with
``--redis-url``/``--config``, the collectors' statuses); every HPA in scope on tidegauge's metrics.

Exit status: 0 everything passed, 1 warnings, 2 failures. ``--output json`` for CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from collections.abc import Sequence
from typing import Any

from tidegauge import environment
from tidegauge.ops.cluster import (
    Cluster,
    ClusterError,
    ClusterOptions,
    JsonObject,
    add_cluster_arguments,
    connect,
    direct_connector,
)
from tidegauge.ops.doctor_apiservice import (
    Chain,
    PodConnector,
    check_apiservices,
    check_certificate,
    check_service,
)
from tidegauge.ops.doctor_usage import (
    DEFAULT_MAX_AGE_SECONDS,
    MaxAge,
    check_hpas,
    check_path,
    check_rbac,
    check_server,
)
from tidegauge.ops.findings import Finding, as_json, exit_code, failed, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_cluster_arguments(parser)
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="check the HPAs of every namespace"
    )
    parser.add_argument(
        "--service",
        default="tidegauge/tidegauge",
        metavar="NAMESPACE/NAME",
        help="tidegauge's Service, which the APIServices must point at (default tidegauge/tidegauge)",
    )
    parser.add_argument(
        "--pod-address",
        metavar="HOST:PORT",
        help="reach the server's secure port here instead of through a port-forward to a ready pod",
    )
    parser.add_argument("--redis-url", help="also check the collectors' statuses in this Redis")
    parser.add_argument(
        "--config", help=f"config file, for Redis and max ages (default: ${environment.CONFIG_FILE})"
    )
    parser.add_argument(
        "--output", "-o", choices=("text", "json"), default="text", help="text (default) or json"
    )


def run(args: argparse.Namespace) -> int:
    cluster = connect(ClusterOptions.from_args(args))
    namespace, _, name = args.service.partition("/")
    chain = Chain(service_namespace=namespace, service_name=name or "tidegauge")
    connector: PodConnector = direct_connector(args.pod_address) if args.pod_address else cluster.connect_pod
    statuses, max_age = _collector_statuses(args)
    scope = None if args.all_namespaces else (args.namespace or cluster.namespace)
    findings = diagnose(cluster, chain, connector, scope, statuses, max_age)
    print(json.dumps(as_json(findings)) if args.output == "json" else render(findings))
    return exit_code(findings)


def _collector_statuses(args: argparse.Namespace) -> tuple[dict[str, Any] | None, MaxAge]:
    """The collectors' statuses when Redis is named (else None), and each metric's max age."""
    if not (args.redis_url or args.config or os.environ.get(environment.CONFIG_FILE)):
        return None, lambda metric: DEFAULT_MAX_AGE_SECONDS
    from tidegauge.ops.common import open_target

    target = open_target(args)
    try:
        return dict(target.store.read_statuses()), target.max_age_seconds
    finally:
        target.store.close()


def diagnose(
    cluster: Cluster,
    chain: Chain,
    connect_pod: PodConnector,
    namespace: str | None,
    statuses: dict[str, Any] | None = None,
    max_age: MaxAge = lambda metric: DEFAULT_MAX_AGE_SECONDS,
    now: datetime.datetime | None = None,
) -> list[Finding]:
    """Every check, in the order the aggregator and the HPA depend on them."""
    moment = now or datetime.datetime.now(datetime.UTC)
    findings = check_apiservices(cluster, chain)
    if chain.owned:
        findings += check_service(cluster, chain)
        findings += check_certificate(connect_pod, chain, moment)
        findings += check_rbac(cluster, chain)
    hpas, problem = _hpas(cluster, namespace)
    if problem is not None:
        findings.append(problem)
    findings += check_path(cluster, chain, hpas)
    if chain.owned:
        findings += check_server(cluster, chain, statuses, max_age)
    findings += check_hpas(cluster, chain, hpas)
    return findings


def _hpas(cluster: Cluster, namespace: str | None) -> tuple[Sequence[JsonObject], Finding | None]:
    path = (
        "/apis/autoscaling/v2/horizontalpodautoscalers"
        if namespace is None
        else f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
    )
    try:
        return list(cluster.get(path).get("items") or []), None
    except ClusterError as error:
        return [], failed("list HPAs", str(error), "check that you may list HorizontalPodAutoscalers")
