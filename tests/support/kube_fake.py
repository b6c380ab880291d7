"""A small fake kube-apiserver over real HTTPS: TokenReview, SubjectAccessReview, one ConfigMap, pods,
and stored objects.

Pods: a paged list and a chunked watch stream that replays events after its resourceVersion, then goes
live. Objects put with :meth:`FakeKubeApiServer.put` are answered by GET at their path, and listed (with
the ``labelSelector`` and ``fieldSelector`` equality filters the real API applies) at their parent path,
in the real API's shapes (``{"kind": "...List", "items": [...]}``, errors as a ``Status``). Aggregated
API paths (external/custom metrics) are objects too: the test puts the answer the adapter would give.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.support.pki import CertificateAuthority
from tidegauge.selectors import parse_selector

SERVICE_ACCOUNT_TOKEN = "tidegauge-service-account-token"
CONFIG_MAP_PATH = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"


class FakeKubeApiServer:
    """Answers from ``tokens`` (token -> user info), ``allow`` (SAR spec -> allowed) and ``config_map``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = CertificateAuthority("kube-ca")
        self.tokens: dict[str, dict[str, Any]] = {}
        self.allow: Callable[[dict[str, Any]], bool] = lambda spec: False
        self.failing = False
        self.delay_seconds = 0.0
        """How long each TokenReview and SubjectAccessReview takes (a slow kube-apiserver)."""
        self.config_map: dict[str, str] = {}
        self.token_reviews: list[str] = []
        self.access_reviews: list[dict[str, Any]] = []
        self.caller_tokens: set[str] = set()
        self.pods: dict[tuple[str, str], dict[str, str]] = {}
        """(namespace, name) -> labels; change it through add_pod / delete_pod (they emit watch events)."""
        self.pod_requests: list[tuple[str, str]] = []
        """(query string, Accept header) of every pods list and watch."""
        self._resource_version = 1
        self._events: list[tuple[int, dict[str, Any]]] = []
        self._watchers: list[asyncio.Queue[dict[str, Any] | None]] = []
        self.watching = threading.Event()
        """Set while at least one pod watch is open (tests wait for it before expiring watches)."""
        self.objects: dict[str, dict[str, Any]] = {}
        """Path -> the JSON object a GET of it answers."""
        self.lists: set[str] = set()
        """Collection paths (an empty one answers an empty list, not 404)."""
        self.texts: dict[str, str] = {}
        """Path -> a text/plain answer (a service proxy's /metrics or /readyz)."""
        self.failures: dict[str, tuple[int, str, str]] = {}
        """Path -> (HTTP code, reason, message) answered as a Status instead."""
        self.requests: list[tuple[str, dict[str, str]]] = []
        """Every GET of a stored path or collection: (path, query)."""
        self.port_forward_to: tuple[str, int] | None = None
        """Where a pod port-forward connects (every pod, every port): a loopback listener of the test."""
        self.port_forwards: list[tuple[str, str, int]] = []
        """Every port-forward asked for: (namespace, pod, port)."""
        self._sockets: set[web.WebSocketResponse] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> FakeKubeApiServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        serving = self.ca.issue_server("kube-apiserver")
        certificate, key = serving.write(self.directory, "kube-apiserver")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        app = web.Application()
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self._token_review)
        app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", self._access_review)
        app.router.add_get(CONFIG_MAP_PATH, self._config_map)
        app.router.add_get("/api/v1/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods/{pod}/portforward", self._port_forward)
        app.router.add_get("/{tail:.*}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def _caller(self, request: web.Request) -> None:
        self.caller_tokens.add(request.headers.get("Authorization", ""))
        if self.failing:
            raise web.HTTPInternalServerError(text="etcd is on fire")

    async def _token_review(self, request: web.Request) -> web.Response:
        self._caller(request)
        await asyncio.sleep(self.delay_seconds)
        review = await request.json()
        token = review["spec"]["token"]
        self.token_reviews.append(token)
        user = self.tokens.get(token)
        status: dict[str, Any] = {"authenticated": user is not None}
        if user is not None:
            status["user"] = user
        return web.json_response({**review, "status": status})

    async def _access_review(self, request: web.Request) -> web.Response:
        self._caller(request)
        await asyncio.sleep(self.delay_seconds)
        review = await request.json()
        self.access_reviews.append(review["spec"])
        allowed = self.allow(review["spec"])
        status = {"allowed": allowed, **({} if allowed else {"reason": "no RBAC rule"})}
        return web.json_response({**review, "status": status})

    async def _config_map(self, request: web.Request) -> web.Response:
        self._caller(request)
        return web.json_response({"kind": "ConfigMap", "apiVersion": "v1", "data": dict(self.config_map)})

    # --- pods ---------------------------------------------------------------------------------------

    def _pod_object(self, namespace: str, name: str, labels: dict[str, str], version: int) -> dict[str, Any]:
        metadata = {
            "namespace": namespace,
            "name": name,
            "labels": dict(labels),
            "resourceVersion": str(version),
        }
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}

    def _emit(self, kind: str, namespace: str, name: str, labels: dict[str, str]) -> None:
        self._resource_version += 1
        event = {"type": kind, "object": self._pod_object(namespace, name, labels, self._resource_version)}
        self._events.append((self._resource_version, event))
        for queue in self._watchers:
            queue.put_nowait(event)

    def _on_loop(self, action: Callable[[], None]) -> None:
        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def add_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Create (or relabel) a pod: watchers see ADDED (or MODIFIED)."""

        def change() -> None:
            kind = "MODIFIED" if (namespace, name) in self.pods else "ADDED"
            self.pods[(namespace, name)] = dict(labels)
            self._emit(kind, namespace, name, labels)

        self._on_loop(change)

    def delete_pod(self, namespace: str, name: str) -> None:
        def change() -> None:
            labels = self.pods.pop((namespace, name))
            self._emit("DELETED", namespace, name, labels)

        self._on_loop(change)

    def expire_watches(self) -> None:
        """Every open watch gets a 410 ERROR event and ends; older resourceVersions are forgotten."""

        def change() -> None:
            gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
            self._events.clear()
            for queue in self._watchers:
                queue.put_nowait(gone)
                queue.put_nowait(None)

        self._on_loop(change)

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        self._caller(request)
        self.pod_requests.append((request.query_string, request.headers.get("Accept", "")))
        if request.query.get("watch") in ("1", "true"):
            return await self._watch_pods(request)
        limit = int(request.query.get("limit", "0")) or len(self.pods)
        start = int(request.query.get("continue", "0") or "0")
        everything = sorted(self.pods.items())
        page = everything[start : start + limit]
        metadata: dict[str, Any] = {"resourceVersion": str(self._resource_version)}
        if start + limit < len(everything):
            metadata["continue"] = str(start + limit)
        items = [self._pod_object(ns, name, labels, self._resource_version) for (ns, name), labels in page]
        return web.json_response(
            {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items,
            }
        )

    async def _watch_pods(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion", "0") or "0")
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        if self._events and since < self._events[0][0] - 1:
            queue.put_nowait(
                {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
            )
            queue.put_nowait(None)
        else:
            for version, event in self._events:
                if version > since:
                    queue.put_nowait(event)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._watchers.append(queue)
        self.watching.set()
        try:
            while (live := await queue.get()) is not None:
                await response.write(json.dumps(live).encode() + b"\n")
        finally:
            self._watchers.remove(queue)
            if not self._watchers:
                self.watching.clear()
        await response.write_eof()
        return response

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        """The port-forward subresource's WebSocket protocol (v4.channel.k8s.io), one port: channel 0
        carries data, channel 1 errors; each starts with a frame of the port number (little-endian)."""
        self._caller(request)
        port = int(request.query["ports"])
        self.port_forwards.append((request.match_info["namespace"], request.match_info["pod"], port))
        if self.port_forward_to is None:
            return _status(404, "NotFound", "no port-forward target in this fake")
        socket = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await socket.prepare(request)
        self._sockets.add(socket)
        reader, writer = await asyncio.open_connection(*self.port_forward_to)
        first = port.to_bytes(2, "little")
        await socket.send_bytes(b"\x00" + first)
        await socket.send_bytes(b"\x01" + first)

        async def from_pod() -> None:
            while data := await reader.read(65536):
                await socket.send_bytes(b"\x00" + data)
            await socket.close()

        forwarding = asyncio.ensure_future(from_pod())
        async for message in socket:
            if message.type == web.WSMsgType.BINARY and message.data[:1] == b"\x00":
                writer.write(message.data[1:])
                await writer.drain()
        writer.close()
        forwarding.cancel()
        self._sockets.discard(socket)
        return socket

    async def _close_sockets(self) -> None:
        for socket in list(self._sockets):
            await socket.close()

    def put(self, path: str, document: dict[str, Any]) -> None:
        """Store ``document`` at ``path`` (and make its parent a collection that lists it)."""
        self.objects[path] = document
        self.lists.add(path.rsplit("/", 1)[0])

    async def _get(self, request: web.Request) -> web.Response:
        self._caller(request)
        path = request.path
        self.requests.append((path, dict(request.query)))
        if path in self.failures:
            code, reason, message = self.failures[path]
            return _status(code, reason, message)
        if path in self.texts:
            return web.Response(text=self.texts[path], content_type="text/plain")
        if path in self.objects:
            return web.json_response(self.objects[path])
        if path in self.lists:
            items = [
                document
                for key, document in sorted(self.objects.items())
                if key.rsplit("/", 1)[0] == path and _selected(document, request.query)
            ]
            kind = items[0].get("kind", "") + "List" if items else "List"
            return web.json_response({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items})
        return _status(404, "NotFound", f"the server could not find the requested resource ({path})")

    def write_kubeconfig(self) -> str:
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.port}",
                        "certificate-authority-data": base64.b64encode(self.ca.pem).decode(),
                    },
                }
            ],
            "users": [{"name": "tidegauge", "user": {"token": SERVICE_ACCOUNT_TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tidegauge"}}],
            "current-context": "fake",
        }
        path = self.directory / "kube-apiserver.kubeconfig"
        path.write_text(yaml.safe_dump(document))
        return str(path)

    def stop(self) -> None:
        def end_watches() -> None:
            for queue in self._watchers:
                queue.put_nowait(None)

        self._on_loop(end_watches)
        asyncio.run_coroutine_threadsafe(self._close_sockets(), self._loop).result(10)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return web.json_response({**body, "message": message, "reason": reason, "code": code}, status=code)


def _selected(document: dict[str, Any], query: Any) -> bool:
    """``labelSelector`` on metadata.labels; ``fieldSelector`` equalities on dotted fields."""
    labels = document.get("metadata", {}).get("labels") or {}
    if query.get("labelSelector") and not parse_selector(query["labelSelector"]).matches(labels):
        return False
    for requirement in filter(None, (query.get("fieldSelector") or "").split(",")):
        field, _, wanted = requirement.partition("=")
        value: Any = document
        for part in field.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        if value != wanted:
            return False
    return True
