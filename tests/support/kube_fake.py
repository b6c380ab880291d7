"""A small fake kube-apiserver over real HTTPS: TokenReview, SubjectAccessReview, one ConfigMap, and pods
(paged list and a chunked watch stream that replays events after its resourceVersion, then goes live)."""

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
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
