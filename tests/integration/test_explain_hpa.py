"""``tidegauge explain hpa`` against a kube-apiserver served over real HTTPS, through the kubernetes client.

The HPAs are horizontal_test.go's ``TestScaleUpPerPodCMExternal`` (3 -> 4 on 8600m against 2222m per
pod) and replica_calculator_test.go's ``TestReplicaCalcScaleUpCMObject`` (3 -> 4 on 20000m against
15000m), read and fetched through the fake's real API paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.cluster_objects import (
    NAMESPACE,
    event,
    external_metric,
    external_values,
    hpa,
    object_metric,
    object_value,
    put_workload,
)
from tests.support.kube_fake import FakeKubeApiServer
from tidegauge.cli import main

HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/worker"
EXTERNAL_PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/qps"
OBJECT_PATH = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/deployments/frontend/requests"


@pytest.fixture(autouse=True)
def workload(kube: FakeKubeApiServer) -> None:
    """Deployment worker at 3 replicas, all ready; no events yet."""
    put_workload(kube, replicas=3, ready=3)
    kube.lists.add(f"/api/v1/namespaces/{NAMESPACE}/events")


def explain_json(kube: FakeKubeApiServer, *extra: str, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    kubeconfig = kube.write_kubeconfig()
    code = main(
        ["explain", "hpa", "worker", "-n", NAMESPACE, "--kubeconfig", kubeconfig, "-o", "json", *extra]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


def test_explain_matches_the_upstream_external_average_value_case(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN TestScaleUpPerPodCMExternal: 2..6 replicas at 3, qps 8600m against 2222m per pod
    metric = external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m")
    kube.put(HPA_PATH, hpa("worker", [metric], current=3, desired=4))
    kube.put(EXTERNAL_PATH, external_values("qps", "8600m"))

    # WHEN explain reads it
    report = explain_json(kube, capsys=capsys)

    # THEN it fetched the metric as the HPA does (the selector as labelSelector) and agrees on 4
    assert (EXTERNAL_PATH, {"labelSelector": "queue=orders"}) in kube.requests
    [reading] = report["metrics"]
    assert reading["value"] == pytest.approx(8.6)
    assert reading["ratio"] == pytest.approx(8600 / (2222 * 3))
    assert reading["proposal"] == 4
    assert report["desiredReplicas"] == 4
    assert report["statusDesiredReplicas"] == 4
    assert report["agrees"] is True


def test_explain_combines_external_and_object_metrics_and_clamps_to_max(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an External metric asking ceil(30000 / 2222) = 14 and TestReplicaCalcScaleUpCMObject's 4
    metrics = [
        external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m"),
        object_metric("requests", "frontend", "15"),
    ]
    kube.put(HPA_PATH, hpa("worker", metrics, current=3, desired=6))
    kube.put(EXTERNAL_PATH, external_values("qps", "10", "20"))
    kube.put(OBJECT_PATH, object_value("requests", "frontend", "20"))

    # WHEN explain reads it
    report = explain_json(kube, capsys=capsys)

    # THEN each metric's proposal is shown, the largest wins, and max_replicas (6) clamps it
    proposals = {m["key"]: m["proposal"] for m in report["metrics"]}
    assert proposals == {"external/qps": 14, "object/requests": 4}
    assert report["recommendation"] == 14
    assert report["desiredReplicas"] == 6
    assert report["limitedBy"] == "TooManyReplicas"
    assert report["agrees"] is True


def test_explain_what_if_target_is_stabilised_like_the_controller(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the External case, and a what-if target of 4300m: ceil(8.6 / 4.3) = 2, a scale-down
    kube.put(HPA_PATH, hpa("worker", [external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m")]))
    kube.put(EXTERNAL_PATH, external_values("qps", "8600m"))

    # WHEN explain is asked "what if"
    report = explain_json(kube, "--target", "qps=4300m", capsys=capsys)

    # THEN the metric proposes 2, but the 300 s scale-down window holds 3, as a fresh controller would
    assert report["metrics"][0]["proposal"] == 2
    assert report["desiredReplicas"] == 3
    assert report["stabilizedBy"] == "ScaleDownStabilized"
    assert report["whatIf"] is True


def test_explain_seeds_scale_events_from_successful_rescale_events(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an HPA allowed +1 pod per 60 s that went 2 -> 3 ten seconds ago (its SuccessfulRescale events)
    behavior = {
        "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}], "selectPolicy": "Max"}
    }
    spec = hpa(
        "worker",
        [external_metric("qps", {"queue": "orders"}, "AverageValue", "1")],
        max_replicas=20,
        behavior=behavior,
    )
    kube.put(HPA_PATH, spec)
    kube.put(EXTERNAL_PATH, external_values("qps", "10"))
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    for seconds_ago, size in ((600, 2), (10, 3)):
        at = (now - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        reason = f"New size: {size}; reason: external metric qps above target"
        kube.put(
            f"/api/v1/namespaces/{NAMESPACE}/events/e{size}", event("worker", "SuccessfulRescale", reason, at)
        )

    # WHEN explain reads it: the metric asks for 10, the policy allows +1 pod per 60 s
    report = explain_json(kube, capsys=capsys)

    # THEN the +1 of 10 s ago used the period up: no more now (a fresh controller would allow 4)
    assert report["metrics"][0]["proposal"] == 10
    assert report["desiredReplicas"] == 3
    assert report["limitedBy"] == "ScaleUpLimit"
    assert report["behavior"][0] == "scale up: window 0 s, select Max of 1 pods per 60 s"
    assert any("SuccessfulRescale" in line for line in report["events"])


def test_explain_reports_the_hpas_own_failure_to_fetch(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an HPA whose metric the adapter answers with 404
    kube.put(HPA_PATH, hpa("worker", [external_metric("qps", {"queue": "orders"}, "AverageValue", "1")]))
    kube.failures[EXTERNAL_PATH] = (404, "NotFound", 'external metric "qps" not found')

    # WHEN explain reads it
    report = explain_json(kube, capsys=capsys)

    # THEN it shows the failure and holds replicas as the controller does
    assert "404" in report["metrics"][0]["error"]
    assert report["desiredReplicas"] == 3
    assert report["reason"] == "FailedGetExternalMetric"


def test_kubectl_and_the_kubectl_plugin_see_the_same_api(kube: FakeKubeApiServer, tmp_path: Path) -> None:
    # GIVEN the External case, and kubectl with the kubectl-tidegauge plugin on PATH
    kube.put(
        HPA_PATH,
        hpa("worker", [external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m")], desired=4),
    )
    kube.put(EXTERNAL_PATH, external_values("qps", "8600m"))
    kubeconfig = kube.write_kubeconfig()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    # WHEN kubectl reads the HPA, and runs `kubectl tidegauge explain hpa`
    raw = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", HPA_PATH],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    plugin = subprocess.run(
        ["kubectl", "tidegauge", "explain", "hpa", "worker", "-n", NAMESPACE, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    # THEN kubectl sees the HPA explain read, and the plugin prints the same decision
    assert json.loads(raw.stdout)["metadata"]["name"] == "worker"
    assert plugin.returncode == 0, plugin.stderr
    assert "desired replicas: 4" in plugin.stdout
    assert "HPA status.desiredReplicas: 4 (agrees)" in plugin.stdout


def test_the_context_and_its_namespace_are_honoured_as_kubectl_does(
    kube: FakeKubeApiServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a kubeconfig whose current context has no namespace, and a context `shop` whose namespace is shop
    kube.put(HPA_PATH, hpa("worker", [external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m")]))
    kube.put(EXTERNAL_PATH, external_values("qps", "8600m"))
    document = yaml.safe_load(Path(kube.write_kubeconfig()).read_text())
    document["contexts"].append(
        {"name": "shop", "context": {"cluster": "fake", "user": "tidegauge", "namespace": NAMESPACE}}
    )
    kubeconfig = tmp_path / "two-contexts.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(document))

    # WHEN explain runs with --context shop and no -n, and with $KUBECONFIG instead of --kubeconfig
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    code = main(["explain", "hpa", "worker", "--context", "shop", "-o", "json"])
    default = main(["explain", "hpa", "worker", "-o", "json"])
    out = capsys.readouterr()

    # THEN the context's namespace is used; the current context's (default) has no such HPA
    first = json.loads(out.out.splitlines()[0])
    assert code == 0
    assert first["hpa"] == {"namespace": NAMESPACE, "name": "worker"}
    assert default == 1
    assert "horizontalpodautoscalers/worker: 404" in out.err


def test_explain_averages_a_pods_metric_over_the_targets_pods(
    kube: FakeKubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN TestReplicaCalcScaleDownCM: 5 pods reporting qps 12000m each against a 20000m average
    put_workload(kube, replicas=5, ready=5)
    pods_metric = {
        "type": "Pods",
        "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "20"}},
    }
    kube.put(HPA_PATH, hpa("worker", [pods_metric], min_replicas=1, current=5, desired=5))
    items = [
        {
            "describedObject": {
                "kind": "Pod",
                "namespace": NAMESPACE,
                "name": f"worker-{i}",
                "apiVersion": "v1",
            },
            "metric": {"name": "qps", "selector": None},
            "timestamp": "2026-12-01T10:00:00Z",
            "windowSeconds": 60,
            "value": "12",
        }
        for i in range(5)
    ]
    pods_path = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/pods/*/qps"
    kube.put(
        pods_path, {"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "items": items}
    )

    # WHEN explain reads it
    report = explain_json(kube, capsys=capsys)

    # THEN it asked for the scale target's pods, averaged them, and proposes the upstream 3
    assert (pods_path, {"labelSelector": "app=worker"}) in kube.requests
    [reading] = report["metrics"]
    assert reading["value"] == pytest.approx(12)
    assert reading["proposal"] == 3
