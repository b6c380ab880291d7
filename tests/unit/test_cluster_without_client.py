"""The cluster commands where the kubernetes client is not installed (the server image leaves it out):
a usage error naming the fix, not a traceback."""

from __future__ import annotations

import sys

import pytest

from tidegauge.cli import main


@pytest.fixture
def no_kubernetes_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import kubernetes`` fails as it does in the server image (None in sys.modules blocks it)."""
    monkeypatch.setitem(sys.modules, "kubernetes", None)


def test_doctor_in_the_server_pod_says_to_run_it_from_a_laptop(
    no_kubernetes_client: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pod (the kubelet sets KUBERNETES_SERVICE_HOST) whose image has no kubernetes client
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.delenv("KUBECONFIG", raising=False)

    # WHEN `kubectl exec ... -- tidegauge doctor` runs there
    code = main(["doctor"])

    # THEN a usage error (exit 2) on one line says why and where to run it instead
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tidegauge doctor: the cluster commands (doctor, explain) need the kubernetes")
    assert "the server image leaves out" in err
    assert "Fix: run it from a laptop with a kubeconfig: `kubectl tidegauge doctor`" in err
    assert "Traceback" not in err


def test_explain_without_the_client_outside_a_pod_names_the_extra(
    no_kubernetes_client: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a laptop install without the cli extra
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    # WHEN explain runs
    code = main(["explain", "hpa", "worker"])

    # THEN the fix is the extra
    err = capsys.readouterr().err
    assert code == 2
    assert "Fix: pip install 'tidegauge[cli]'" in err
    assert "server image" not in err
