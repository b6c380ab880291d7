"""Cluster access for the cluster-facing commands (``doctor``, ``explain``), on the ``kubernetes`` client.

Every read is a raw GET of the path the HPA controller or the aggregator would use (so what ``explain``
fetches is byte for byte what the HPA fetches), answered as parsed JSON. The kubeconfig is found as
kubectl finds it (``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``), with ``--context``;
inside a pod, without one, the in-cluster ServiceAccount is used. The ``kubernetes`` package comes with
the ``tidegauge[cli]`` extra and is imported only here, only when a command needs the cluster.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tidegauge.errors import OperationFailed, UsageError

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
REQUEST_TIMEOUT_SECONDS = 10.0


class ClusterError(OperationFailed):
    """The kube-apiserver refused or failed a request; ``code`` is its HTTP status (0: unreachable)."""

    hint = (
        "check the kubeconfig and context (`kubectl config current-context`) and that the API server answers"
    )

    def __init__(self, message: str, code: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class Cluster(Protocol):
    """What the commands need from a cluster: GET and POST of API paths, and a pod port-forward."""

    namespace: str
    """The context's namespace (kubectl's default for ``-n``)."""

    def get(self, path: str, query: Mapping[str, str] | None = None) -> JsonObject: ...
    def get_text(self, path: str) -> str: ...
    def post(self, path: str, body: JsonObject) -> JsonObject: ...
    def connect_pod(self, namespace: str, pod: str, port: int) -> socket.socket: ...


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """kubectl's own flags, so ``kubectl tidegauge ...`` behaves as kubectl does."""
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's namespace)")


@dataclass(frozen=True)
class ClusterOptions:
    kubeconfig: str | None
    context: str | None
    namespace: str | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ClusterOptions:
        return cls(args.kubeconfig, args.context, args.namespace)


def no_client_error() -> UsageError:
    """Why a cluster command cannot run here, and where it can: inside a pod (the server image leaves
    the kubernetes client out, docs/operations.md "Doctor from a laptop") or on a bare install."""
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        return UsageError(
            "the cluster commands (doctor, explain) need the kubernetes client, which the server image "
            "leaves out to stay lean (its ServiceAccount may not read what doctor checks either). Fix: "
            "run it from a laptop with a kubeconfig: `kubectl tidegauge doctor` (pip install "
            "'tidegauge[cli]'); in this pod, `tidegauge metrics` and `tidegauge status` read Redis"
        )
    return UsageError(
        "the cluster commands (doctor, explain) need the kubernetes client. Fix: pip install 'tidegauge[cli]'"
    )


def connect(options: ClusterOptions) -> KubernetesCluster:
    """A client for the kubeconfig context (or the in-cluster ServiceAccount inside a pod)."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ModuleNotFoundError as error:
        raise no_client_error() from error
    kubeconfig = options.kubeconfig or os.environ.get("KUBECONFIG")
    in_cluster = kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
    try:
        if in_cluster and not Path("~/.kube/config").expanduser().exists():
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            api = client.ApiClient(configuration)
            namespace = IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
        else:
            api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=options.context
            )
            namespace = _context_namespace(kubeconfig, options.context)
    except (ConfigException, OSError) as error:
        raise UsageError(f"cannot load the cluster configuration: {error}") from error
    return KubernetesCluster(api, options.namespace or namespace)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


class KubernetesCluster:
    """:class:`Cluster` on a ``kubernetes.client.ApiClient``."""

    def __init__(self, api: Any, namespace: str) -> None:
        self._api = api
        self.namespace = namespace
        self._forwards: list[Any] = []

    def close(self) -> None:
        """Close the port-forwards' WebSockets (the client's proxy thread returns without closing its
        own when the apiserver ends the stream first) and the pooled HTTPS connections."""
        forwards, self._forwards = self._forwards, []
        for forward in forwards:
            forward.websocket.close()
            forward.websocket.shutdown()  # close() returns early once the peer has closed
        self._api.rest_client.pool_manager.clear()
        self._api.close()

    def get(self, path: str, query: Mapping[str, str] | None = None) -> JsonObject:
        return self._json("GET", path, self._call("GET", path, query, None))

    def get_text(self, path: str) -> str:
        """A non-JSON answer (a service proxy's ``/metrics``, ``/readyz``)."""
        return self._call("GET", path, None, None, accept="text/plain, */*").decode("utf-8", "replace")

    def post(self, path: str, body: JsonObject) -> JsonObject:
        return self._json("POST", path, self._call("POST", path, None, body))

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: JsonObject | None,
        accept: str = "application/json",
    ) -> bytes:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": accept, "Content-Type": "application/json"}
        try:
            status, data = self._request(method, path, list((query or {}).items()), headers, body)
        except ApiException as error:
            raise ClusterError(
                f"{method} {path}: {error.status} {_status_message(error.body) or error.reason}",
                code=int(error.status or 0),
                reason=_status_reason(error.body),
            ) from error
        except (HTTPError, OSError) as error:
            raise ClusterError(f"{method} {path}: the API server is unreachable ({error})") from error
        if not 200 <= status <= 299:
            raise ClusterError(
                f"{method} {path}: {status} {_status_message(data)}", code=status, reason=_status_reason(data)
            )
        return data

    @staticmethod
    def _json(method: str, path: str, data: bytes) -> JsonObject:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise ClusterError(f"{method} {path}: the answer is not JSON") from error
        if not isinstance(document, dict):
            raise ClusterError(f"{method} {path}: the answer is not a JSON object")
        return document

    def _request(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any
    ) -> tuple[int, bytes]:
        """One request with the client's auth and TLS; the status and raw body (both client generations)."""
        api = self._api
        if hasattr(api, "param_serialize"):  # kubernetes >= 35: the request is built, then sent
            method, url, headers, body, _ = api.param_serialize(
                method,
                path,
                query_params=query,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
            return int(response.status), bytes(response.read())
        response = api.call_api(  # older clients: one call
            path,
            method,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        return int(response.status), bytes(response.data)

    def connect_pod(self, namespace: str, pod: str, port: int) -> socket.socket:
        """A socket to ``pod:port`` through the API server's port-forward (``kubectl port-forward``).

        The kubernetes client's ``portforward`` speaks the port-forward WebSocket protocol and hands out
        one end of a local socket pair per port; TLS can then be spoken over it as over TCP.
        """
        from kubernetes import client
        from kubernetes.stream import portforward

        core = client.CoreV1Api(self._api)
        forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
        self._forwards.append(forward)
        connection: socket.socket = forward.socket(port)
        connection.settimeout(REQUEST_TIMEOUT_SECONDS)
        return connection


def _status_message(body: Any) -> str:
    try:
        return str(json.loads(body).get("message", ""))
    except (TypeError, ValueError, AttributeError):
        return ""


def _status_reason(body: Any) -> str:
    try:
        return str(json.loads(body).get("reason", ""))
    except (TypeError, ValueError, AttributeError):
        return ""


def direct_connector(address: str) -> Callable[[str, str, int], socket.socket]:
    """For tests and for a port-forward made by hand: every pod is reached at ``host:port`` instead."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--pod-address must be HOST:PORT, got {address!r}")

    def connect_pod(namespace: str, pod: str, target_port: int) -> socket.socket:
        return socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT_SECONDS)

    return connect_pod


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """A ``metav1.LabelSelector`` as the query string client-go sends (``LabelSelectorAsSelector``)."""
    if not selector:
        return ""
    parts = [(key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append((key, f"{key} in ({values})"))
        elif operator == "NotIn":
            parts.append((key, f"{key} notin ({values})"))
        elif operator == "Exists":
            parts.append((key, key))
        elif operator == "DoesNotExist":
            parts.append((key, f"!{key}"))
        else:
            raise UsageError(f"label selector operator {operator!r} of key {key!r} is not a Kubernetes one")
    # client-go's selector String(): requirements sorted by key.
    return ",".join(text for _, text in sorted(parts))
