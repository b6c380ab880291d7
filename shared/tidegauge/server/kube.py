"""A tiny asyncio client for the few kube-apiserver calls the server makes.

TokenReview, SubjectAccessReview, reading one ConfigMap, and listing and watching pods (metadata
only) for Pods metrics, over HTTPS with aiohttp. The connection
comes from a kubeconfig file or, inside a pod, from the service account (token re-read on each call,
since projected tokens rotate).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from tidegauge.errors import UsageError

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
"""Pods as metadata only (name, namespace, labels: no spec or status), or plain JSON where unsupported."""
WATCH_METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
POD_PAGE_SIZE = 500
WATCH_SECONDS = 300
"""How long one pod watch lasts before the apiserver ends it and it is resumed."""
MAX_WATCH_EVENT_BYTES = 1 << 20


class KubeError(Exception):
    """A kube-apiserver call failed (unreachable, timed out, or answered an error)."""


class KubeConfigError(UsageError, ValueError):
    """A kubeconfig that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class KubeConnection:
    """Where the kube-apiserver is and how to authenticate to it."""

    server: str
    ssl_context: ssl.SSLContext
    token: str | None = None
    token_file: str | None = None

    def bearer_token(self) -> str | None:
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError as error:
                raise KubeError(
                    f"cannot read the service account token {self.token_file}: {error}"
                ) from error
        return self.token


def in_cluster(
    environ: dict[str, str] | None = None, directory: Path = SERVICE_ACCOUNT_DIR
) -> KubeConnection | None:
    """The pod's service-account connection, or None outside a cluster."""
    env = dict(os.environ) if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = directory / "token"
    if not host or not token_file.is_file():
        return None
    if ":" in host:
        host = f"[{host}]"
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    return KubeConnection(f"https://{host}:{port}", context, token_file=str(token_file))


def _file_or_data(base: Path, entry: dict[str, Any], name: str) -> bytes | None:
    data = entry.get(f"{name}-data")
    if data:
        return base64.b64decode(data)
    path = entry.get(name)
    if path:
        return (base / str(path)).read_bytes()
    return None


def from_kubeconfig(path: str) -> KubeConnection:
    """The current context's cluster and user of a kubeconfig file."""
    base = Path(path).resolve().parent
    try:
        document = yaml.safe_load(Path(path).read_text())
        contexts = {c["name"]: c["context"] for c in document.get("contexts") or []}
        context = contexts[document["current-context"]]
        cluster = {c["name"]: c["cluster"] for c in document["clusters"]}[context["cluster"]]
        user = {u["name"]: u["user"] for u in document.get("users") or []}.get(context.get("user"), {}) or {}
        ssl_context = ssl.create_default_context()
        authority = _file_or_data(base, cluster, "certificate-authority")
        if authority:
            ssl_context.load_verify_locations(cadata=authority.decode())
        if cluster.get("insecure-skip-tls-verify"):
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        certificate = _file_or_data(base, user, "client-certificate")
        key = _file_or_data(base, user, "client-key")
        if certificate and key:
            _load_client_certificate(ssl_context, certificate, key)
        token_file = user.get("tokenFile")
        return KubeConnection(
            str(cluster["server"]).rstrip("/"),
            ssl_context,
            token=user.get("token"),
            token_file=str(base / token_file) if token_file else None,
        )
    except (OSError, KeyError, TypeError, AttributeError, ValueError, yaml.YAMLError, ssl.SSLError) as error:
        raise KubeConfigError(
            f"{path}: cannot use this kubeconfig ({type(error).__name__}: {error}); "
            "it needs a current-context whose cluster has a server (and its CA) "
            "and whose user has a client certificate or token"
        ) from error


def _load_client_certificate(context: ssl.SSLContext, certificate: bytes, key: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="tidegauge-kube-") as directory:
        certificate_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        certificate_path.write_bytes(certificate)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        context.load_cert_chain(certificate_path, key_path)


class KubeClient:
    """JSON calls to the kube-apiserver, each bounded by ``timeout_seconds``."""

    def __init__(self, connection: KubeConnection, *, timeout_seconds: float = 1.5) -> None:
        self.connection = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _open(self, accept: str) -> tuple[aiohttp.ClientSession, dict[str, str]]:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.connection.ssl_context)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        headers = {"Accept": accept}
        token = self.connection.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self._session, headers

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, accept: str = "application/json"
    ) -> dict[str, Any]:
        session, headers = self._open(accept)
        url = f"{self.connection.server}{path}"
        try:
            async with session.request(method, url, json=body, headers=headers) as response:
                text = await response.text()
                if response.status >= 300:
                    raise KubeError(f"{method} {path} answered {response.status}: {text[:300]}")
                result: dict[str, Any] = json.loads(text)
                return result
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise KubeError(f"{method} {path} failed: {type(error).__name__}: {error}") from error

    async def create_token_review(self, token: str) -> dict[str, Any]:
        """The ``status`` of a TokenReview of ``token``."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        answer = await self._call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
        return dict(answer.get("status") or {})

    async def create_subject_access_review(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The ``status`` of a SubjectAccessReview with ``spec``."""
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = await self._call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return dict(answer.get("status") or {})

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str]:
        """The ``data`` of a ConfigMap."""
        answer = await self._call("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        return {str(key): str(value) for key, value in (answer.get("data") or {}).items()}

    async def list_pods(self, continue_token: str | None) -> dict[str, Any]:
        """One page of the pods of every namespace, metadata only."""
        path = f"/api/v1/pods?limit={POD_PAGE_SIZE}"
        if continue_token:
            path += f"&continue={quote(continue_token, safe='')}"
        return await self._call("GET", path, accept=METADATA_ONLY)

    async def watch_pods(self, resource_version: str) -> AsyncGenerator[dict[str, Any], None]:
        """The watch events of every namespace's pods after ``resource_version``, one JSON object a line,
        until the apiserver ends the watch (``timeoutSeconds``)."""
        session, headers = self._open(WATCH_METADATA_ONLY)
        query = f"watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}"
        query += f"&resourceVersion={quote(resource_version, safe='')}"
        url = f"{self.connection.server}/api/v1/pods?{query}"
        timeout = aiohttp.ClientTimeout(total=WATCH_SECONDS + 30, sock_read=WATCH_SECONDS + 30)
        try:
            async with session.get(url, headers=headers, timeout=timeout) as response:
                if response.status >= 300:
                    text = await response.text()
                    raise KubeError(f"watch of pods answered {response.status}: {text[:300]}")
                try:
                    while True:
                        line = await response.content.readline()
                        if not line:
                            return
                        if len(line) > MAX_WATCH_EVENT_BYTES:
                            raise KubeError(f"a pod watch event of {len(line)} bytes: more than allowed")
                        if line.strip():
                            event: dict[str, Any] = json.loads(line)
                            yield event
                except BaseException:
                    # Left mid-stream (cancelled, closed by the reader, a bad line): abort the
                    # connection. A TLS close would wait for the apiserver's close_notify, which a
                    # watch in progress does not send, and outlive a stopping event loop.
                    _abort(response)
                    raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise KubeError(f"watch of pods failed: {type(error).__name__}: {error}") from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _abort(response: aiohttp.ClientResponse) -> None:
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is not None:
        transport.abort()
