"""A small fake kube-apiserver over real HTTPS: TokenReview, SubjectAccessReview and one ConfigMap."""

from __future__ import annotations

import asyncio
import base64
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
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
