"""Delegation over real TLS: a front tidegauge forwards what it does not hold to a second real tidegauge.

The delegate stands in for KEDA's metrics server: it authenticates the front by bearer token through the
fake kube-apiserver's TokenReview and authorizes it by SubjectAccessReview, as KEDA's server does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.kube_fake import FakeKubeApiServer
from tests.support.pki import CertificateAuthority
from tests.support.server_harness import (
    HPA_ACCEPT,
    PassThroughStore,
    Pki,
    ServerThread,
    aggregator_headers,
    orders_sample,
    request,
    seed,
    server_config,
    settings_for,
)
from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.settings import AuthenticationFlags, AuthorizationMode, DelegateSettings
from tidegauge.store import StoreUnavailable

EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop"
OWN_PATH = f"{EXTERNAL}/sqs_messages"
KEDA_METRIC = "s0-aws-sqs-orders"
KEDA_QUERY = "labelSelector=scaledobject.keda.sh%2Fname%3Dorders"
KEDA_PATH = f"{EXTERNAL}/{KEDA_METRIC}?{KEDA_QUERY}"
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
TIDEGAUGE_USER = "system:serviceaccount:tidegauge:tidegauge"
FIRST_TOKEN, SECOND_TOKEN = "tidegauge-sa-token-1", "tidegauge-sa-token-2"


def keda_sample(value: float = 7) -> Sample:
    return Sample.of(KEDA_METRIC, {"scaledobject.keda.sh/name": "orders"}, value, time.time())


class DelegateStore(PassThroughStore):
    """The delegate's store: ``s0-broken`` reads fail (its 503), ``s0-slow`` reads wait for ``release``."""

    def __init__(self, store: AsyncStore) -> None:
        super().__init__(store)
        self.release = asyncio.Event()

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        if metric == "s0-broken":
            raise StoreUnavailable("the delegate's Redis is down")
        if metric == "s0-slow":
            await self.release.wait()
        return await super().read_latest(metric, selector)


@dataclasses.dataclass
class Pair:
    front: ServerThread
    delegate: ServerThread
    store: DelegateStore
    token_file: Path

    def delegated_requests(self, code: str = "200") -> float:
        return self.delegate.server.telemetry.requests.value(code, "external_metric")

    def ask(self, pki: Pki, path: str, user: str = HPA_USER) -> Any:
        # The HPA controller's identity (no system:masters: tidegauge's SAR decides).
        headers = [*aggregator_headers(user, ("system:authenticated",)), ("Accept", HPA_ACCEPT)]
        return request(self.front.port, path, pki.context(pki.aggregator), headers)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    fake = FakeKubeApiServer(tmp_path).start()
    fake.tokens[FIRST_TOKEN] = {"username": TIDEGAUGE_USER, "uid": "sa-1"}
    fake.tokens[SECOND_TOKEN] = {"username": TIDEGAUGE_USER, "uid": "sa-1"}

    def allow(spec: dict[str, Any]) -> bool:
        resource = spec.get("resourceAttributes", {}).get("resource")
        if spec["user"] == TIDEGAUGE_USER:
            return bool(resource != "s0-forbidden")
        return bool(spec["user"] == HPA_USER)

    fake.allow = allow
    yield fake
    fake.stop()


def _webhook_settings(pki: Pki, kube: FakeKubeApiServer, **overrides: Any) -> Any:
    kubeconfig = kube.write_kubeconfig()
    flags = AuthenticationFlags(
        client_ca_file=pki.client_ca_file,
        requestheader_client_ca_file=pki.proxy_ca_file,
        requestheader_allowed_names=("front-proxy-client",),
        authentication_kubeconfig=kubeconfig,
        skip_lookup=True,
    )
    return settings_for(
        pki,
        authentication=flags,
        authorization_mode=AuthorizationMode.WEBHOOK,
        authorization_kubeconfig=kubeconfig,
        **overrides,
    )


@pytest.fixture
def pair(pki: Pki, kube: FakeKubeApiServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Pair]:
    own_url = seed(redis_server.url, [orders_sample()], flush=True)
    delegate_url = seed(redis_server.url.removesuffix("/0") + "/1", [keda_sample()])
    store = DelegateStore(AsyncStore.connect(ConnectionSettings(delegate_url)))
    with ServerThread(_webhook_settings(pki, kube), server_config(delegate_url), store=store) as delegate:
        token_file = tmp_path / "token"
        token_file.write_text(FIRST_TOKEN)
        ca_file = tmp_path / "delegate-ca.crt"
        ca_file.write_bytes(pki.server_ca.pem)
        delegation = DelegateSettings(
            url=f"https://127.0.0.1:{delegate.port}",
            ca_file=str(ca_file),
            token_file=str(token_file),
            timeout_seconds=0.5,
            held_refresh_seconds=3600,
        )
        settings = _webhook_settings(pki, kube, delegate=delegation)
        with ServerThread(settings, server_config(own_url)) as front:
            yield Pair(front, delegate, store, token_file)
        delegate.call(_release(store))


async def _release(store: DelegateStore) -> None:
    store.release.set()


def test_held_metric_is_answered_locally_and_a_keda_metric_by_the_delegate(
    pair: Pair, pki: Pki, kube: FakeKubeApiServer
) -> None:
    # GIVEN tidegauge holding sqs_messages and delegating to a KEDA-like adapter holding s0-aws-sqs-orders
    # WHEN the aggregator asks for its own metric THEN tidegauge answers, the delegate is not asked
    own = pair.ask(pki, OWN_PATH)
    assert own.status == 200
    assert own.json()["items"][0]["metricName"] == "sqs_messages"
    assert pair.delegated_requests() == 0
    # WHEN it asks for the KEDA metric with KEDA's selector THEN the delegate's answer comes back unchanged
    keda = pair.ask(pki, KEDA_PATH)
    assert keda.status == 200
    assert keda.content_type == "application/json"
    (item,) = keda.json()["items"]
    assert item["metricName"] == KEDA_METRIC
    assert item["metricLabels"] == {"scaledobject.keda.sh/name": "orders"}
    assert pair.delegated_requests() == 1
    # AND the delegate authenticated tidegauge itself by its token, and authorized it by SAR
    assert FIRST_TOKEN in kube.token_reviews
    delegate_reviews = [spec for spec in kube.access_reviews if spec["user"] == TIDEGAUGE_USER]
    assert [spec["resourceAttributes"]["resource"] for spec in delegate_reviews] == [KEDA_METRIC]
    # AND the forwarded request counts in the front's delegation telemetry
    assert pair.front.server.telemetry.delegated.value("200") == 1


def test_forwarded_query_and_accept_are_unchanged(pair: Pair, pki: Pki) -> None:
    # GIVEN a selector the delegate's series does not match WHEN forwarded THEN the delegate applies it
    reply = pair.ask(pki, f"{EXTERNAL}/{KEDA_METRIC}?labelSelector=scaledobject.keda.sh%2Fname%3Dother")
    assert reply.status == 404
    assert "no series matching the selector" in reply.json()["message"]


def test_caller_denied_by_sar_is_stopped_before_any_forwarding(
    pair: Pair, pki: Pki, kube: FakeKubeApiServer
) -> None:
    # GIVEN a caller tidegauge's own SubjectAccessReview denies WHEN it asks for a delegated name
    reply = pair.ask(pki, KEDA_PATH, user="mallory")
    # THEN 403 from tidegauge, and the delegate sees no request (no TokenReview of tidegauge's token)
    assert reply.status == 403
    assert reply.json()["reason"] == "Forbidden"
    assert pair.delegate.server.telemetry.requests.value("403", "external_metric") == 0
    assert kube.token_reviews == []
    assert pair.front.server.telemetry.delegated.value("403") == 0


@pytest.mark.parametrize(
    ("metric", "code", "reason"),
    [
        ("s0-unknown", 404, "NotFound"),
        ("s0-forbidden", 403, "Forbidden"),
        ("s0-broken", 503, "ServiceUnavailable"),
    ],
)
def test_delegate_errors_are_passed_through_unchanged(
    pair: Pair, pki: Pki, metric: str, code: int, reason: str
) -> None:
    # GIVEN the delegate answering an error WHEN a delegated name is asked THEN its Status comes back as is
    reply = pair.ask(pki, f"{EXTERNAL}/{metric}")
    assert reply.status == code
    assert reply.json()["reason"] == reason
    assert pair.delegate.server.telemetry.requests.value(str(code), "external_metric") == 1
    assert pair.front.server.telemetry.delegated.value(str(code)) == 1


def test_slow_delegate_is_a_503_for_delegated_names_while_own_metrics_answer(pair: Pair, pki: Pki) -> None:
    # GIVEN a delegate that does not answer within the delegation timeout (0.5 s)
    reply = pair.ask(pki, f"{EXTERNAL}/s0-slow")
    # THEN a 503 Status naming the delegate and its timeout, not the whole request's deadline (2 s)
    assert reply.status == 503
    assert reply.json()["message"].endswith("timed out")
    assert pair.front.server.telemetry.delegated.value("unavailable") == 1
    # AND tidegauge's own metric still answers
    assert pair.ask(pki, OWN_PATH).status == 200


def test_delegate_down_is_a_503_for_delegated_names_while_own_metrics_answer(pair: Pair, pki: Pki) -> None:
    # GIVEN the delegate stopped (its port closed)
    pair.delegate.call(pair.delegate.server.stop())
    # WHEN a delegated name is asked THEN 503 at once; tidegauge's own metric still answers
    reply = pair.ask(pki, KEDA_PATH)
    assert reply.status == 503
    assert "delegated adapter" in reply.json()["message"]
    assert pair.ask(pki, OWN_PATH).status == 200


def test_rotated_token_is_presented_to_the_delegate(pair: Pair, pki: Pki, kube: FakeKubeApiServer) -> None:
    assert pair.ask(pki, KEDA_PATH).status == 200
    # GIVEN the kubelet rotating the projected token (a new file swapped in) and the old one revoked
    rotated = pair.token_file.with_name("token.new")
    rotated.write_text(SECOND_TOKEN)
    os.replace(rotated, pair.token_file)
    del kube.tokens[FIRST_TOKEN]
    # WHEN the next delegated request goes out THEN it carries the new token, which the delegate accepts
    assert pair.ask(pki, KEDA_PATH).status == 200
    assert kube.token_reviews == [FIRST_TOKEN, SECOND_TOKEN]


def test_names_written_to_the_store_become_held_at_the_next_refresh(
    pair: Pair, pki: Pki, redis_server: RedisServer
) -> None:
    # GIVEN a metric the front does not hold yet: forwarded (the delegate does not have it: 404)
    path = f"{EXTERNAL}/queue_age"
    assert pair.ask(pki, path).status == 404
    assert pair.front.server.telemetry.delegated.value("404") == 1
    # WHEN a collector writes it into the front's store and the held names are refreshed
    seed(redis_server.url, [Sample.of("queue_age", {"queue": "orders"}, 3, time.time())])
    pair.front.call(pair.front.server.refresh_held())
    # THEN it is answered by tidegauge itself
    assert pair.ask(pki, path).status == 200
    assert pair.front.server.telemetry.delegated.value("404") == 1


# --- against a small recording adapter: exactly what goes out and what comes back -----------------------


class RecordingAdapter:
    """A real TLS aiohttp adapter that records each request and answers ``reply`` (status, type, body)."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.reply: tuple[int, str, bytes] = (200, "application/vnd.kubernetes.protobuf", b"\x6b\x38\x73\x00")
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.raw_path, dict(request.headers)))
        status, content_type, body = self.reply
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    async def start(self) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return int(self.runner.addresses[0][1])


@pytest.fixture
def recorded(
    pki: Pki, redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[ServerThread, RecordingAdapter]]:
    own_url = seed(redis_server.url, [orders_sample()], flush=True)
    adapter = RecordingAdapter(pki)
    thread = threading.Thread(target=adapter.loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(adapter.start(), adapter.loop).result(10)
    ca_file = tmp_path / "adapter-ca.crt"
    ca_file.write_bytes(pki.server_ca.pem)
    token_file = tmp_path / "token"
    token_file.write_text(FIRST_TOKEN + "\n")
    delegation = DelegateSettings(
        url=f"https://127.0.0.1:{port}/", ca_file=str(ca_file), token_file=str(token_file), max_body_bytes=64
    )
    with ServerThread(settings_for(pki, delegate=delegation), server_config(own_url)) as front:
        yield front, adapter
    assert adapter.runner is not None
    asyncio.run_coroutine_threadsafe(adapter.runner.cleanup(), adapter.loop).result(10)
    adapter.loop.call_soon_threadsafe(adapter.loop.stop)
    thread.join(10)
    adapter.loop.close()


def test_path_query_and_accept_go_out_unchanged_as_tidegauge_itself(
    recorded: tuple[ServerThread, RecordingAdapter], pki: Pki
) -> None:
    front, adapter = recorded
    # GIVEN a KEDA name with a percent-encoded selector, the HPA's Accept and the aggregator's user headers
    path = f"{EXTERNAL}/{KEDA_METRIC}?labelSelector=scaledobject.keda.sh%2Fname%3Dorders&x=%2B+1"
    headers = [*aggregator_headers(), ("Accept", HPA_ACCEPT)]
    reply = request(front.port, path, pki.context(pki.aggregator), headers)
    # THEN the adapter's status, Content-Type and body come back byte for byte
    assert (reply.status, reply.content_type, reply.body) == (200, *adapter.reply[1:])
    # AND it saw the same raw path and query, the same Accept, tidegauge's token and no caller identity
    ((raw_path, sent),) = adapter.requests
    assert raw_path == path
    assert sent["Accept"] == HPA_ACCEPT
    assert sent["Authorization"] == f"Bearer {FIRST_TOKEN}"
    assert not any(name.lower().startswith("x-remote-") for name in sent)


def test_oversized_delegate_answer_is_a_503_not_buffered(
    recorded: tuple[ServerThread, RecordingAdapter], pki: Pki
) -> None:
    front, adapter = recorded
    # GIVEN the adapter answering more than the 64-byte bound of this front
    adapter.reply = (200, "application/json", b"{" + b" " * 100 + b"}")
    context = pki.context(pki.aggregator)
    reply = request(front.port, f"{EXTERNAL}/{KEDA_METRIC}", context, aggregator_headers())
    # THEN a 503 Status naming the bound; tidegauge's own metric still answers
    assert reply.status == 503
    assert "larger than 64 bytes" in reply.json()["message"]
    own = request(front.port, OWN_PATH, pki.context(pki.aggregator), aggregator_headers())
    assert own.status == 200


def test_delegate_not_trusted_by_the_configured_ca_is_a_503(
    pair: Pair, pki: Pki, kube: FakeKubeApiServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    # GIVEN a front whose delegate CA bundle is another CA than the one that issued the delegate's cert
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(CertificateAuthority("not-keda").pem)
    delegation = DelegateSettings(
        url=f"https://127.0.0.1:{pair.delegate.port}", ca_file=str(other_ca), token_file=str(pair.token_file)
    )
    settings = _webhook_settings(pki, kube, delegate=delegation)
    with ServerThread(settings, server_config(redis_server.url)) as front:
        headers = [*aggregator_headers(HPA_USER, ("system:authenticated",)), ("Accept", HPA_ACCEPT)]
        reply = request(front.port, KEDA_PATH, pki.context(pki.aggregator), headers)
    # THEN the handshake fails, the answer is a 503 and the token never reached the delegate
    assert reply.status == 503
    assert "delegated adapter" in reply.json()["message"]
    assert pair.delegated_requests() == 0
    assert FIRST_TOKEN not in kube.token_reviews
