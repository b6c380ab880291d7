"""Pods metrics: pods from a kube-apiserver over real HTTPS (list + chunked watch), series per pod."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_server_kubectl import KUBECTL, kubectl_get_raw
from tests.support.kube_fake import FakeKubeApiServer
from tests.support.server_harness import (
    HPA_ACCEPT,
    Pki,
    Reply,
    ServerThread,
    aggregator_headers,
    request,
    seed,
    settings_for,
)
from tidegauge.config import Config, parse_config
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.selectors import EVERYTHING, parse_selector
from tidegauge.server.kube import KubeClient, from_kubeconfig
from tidegauge.server.pods import PodCache

pytestmark = pytest.mark.integration

PODS_CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
sources:
  - name: jobs
    type: cloudwatch
    region: eu-west-1
    queries:
      - {metric: jobs_in_progress, namespace: Jobs, metric_name: InProgress, stat: Sum, max_age_seconds: 300}
objects:
  - metric: jobs_in_progress
    resource: pods
    namespace: shop
    name: "{pod}"
"""
WORKERS = (
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/jobs_in_progress?labelSelector=app%3Dworker"
)


def pods_config(redis_url: str) -> Config:
    return parse_config(PODS_CONFIG, "<pods-test>", redis_url=redis_url, environ={})


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    fake = FakeKubeApiServer(tmp_path).start()
    fake.add_pod("shop", "worker-1", {"app": "worker"})
    fake.add_pod("shop", "worker-2", {"app": "worker"})
    fake.add_pod("shop", "web-1", {"app": "web"})
    fake.add_pod("other", "worker-9", {"app": "worker"})
    yield fake
    fake.stop()


@pytest.fixture
def server(pki: Pki, kube: FakeKubeApiServer, redis_server: RedisServer) -> Iterator[ServerThread]:
    now = time.time()
    samples = [
        Sample.of("jobs_in_progress", {"pod": "worker-1", "queue": "a"}, 3, now - 3),
        Sample.of("jobs_in_progress", {"pod": "worker-1", "queue": "b"}, 4, now),
        Sample.of("jobs_in_progress", {"pod": "worker-2"}, 0.5, now),
        Sample.of("jobs_in_progress", {"pod": "worker-3"}, 9, now),
        Sample.of("jobs_in_progress", {"pod": "worker-9"}, 99, now),
    ]
    seed(redis_server.url, samples, flush=True)
    settings = settings_for(pki, authorization_kubeconfig=kube.write_kubeconfig())
    with ServerThread(settings, pods_config(redis_server.url)) as thread:
        cache = thread.server.pods
        assert cache is not None
        thread.call(until(cache, cache.synced.is_set))
        # and the watch open, so that the server stops mid-watch (the path a real shutdown takes)
        assert kube.watching.wait(10)
        yield thread


async def until(cache: PodCache, predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():
            await cache.changed()


def pods_in(server: ServerThread, names: set[str]) -> Callable[[], bool]:
    cache = server.server.pods
    assert cache is not None
    return lambda: set(cache.select("shop", EVERYTHING)) == names


def hpa_get(server: ServerThread, pki: Pki, path: str) -> Reply:
    return request(
        server.port, path, pki.context(pki.aggregator), [*aggregator_headers(), ("Accept", HPA_ACCEPT)]
    )


def items_of(reply: Reply) -> list[tuple[str, str, str]]:
    assert reply.status == 200, reply.body
    document = reply.json()
    assert document["kind"] == "MetricValueList"
    return [
        (item["describedObject"]["kind"], item["describedObject"]["name"], item["value"])
        for item in document["items"]
    ]


def test_one_item_per_selected_pod_from_its_series(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    # GIVEN pods worker-1 (two series), worker-2 (one), web-1 (none) in shop, and worker-9 elsewhere
    # WHEN the HPA asks for the pods app=worker THEN one item per shop worker: its series summed
    assert items_of(hpa_get(server, pki, WORKERS)) == [("Pod", "worker-1", "7"), ("Pod", "worker-2", "500m")]
    # AND the pods came from a paged metadata-only list and a watch, never per request
    lists = [query for query, _ in kube.pod_requests if "watch=" not in query]
    assert len(lists) == 1
    assert all("PartialObjectMetadata" in accept for _, accept in kube.pod_requests)


def test_watch_updates_add_and_remove_pods(server: ServerThread, pki: Pki, kube: FakeKubeApiServer) -> None:
    cache = server.server.pods
    assert cache is not None
    # WHEN worker-3 starts and worker-2 goes away THEN the answer follows, without a new list
    kube.add_pod("shop", "worker-3", {"app": "worker"})
    kube.delete_pod("shop", "worker-2")
    server.call(until(cache, pods_in(server, {"worker-1", "worker-3", "web-1"})))
    assert items_of(hpa_get(server, pki, WORKERS)) == [("Pod", "worker-1", "7"), ("Pod", "worker-3", "9")]
    # AND a relabelled pod leaves the selection
    kube.add_pod("shop", "worker-1", {"app": "retired"})
    server.call(until(cache, lambda: cache.select("shop", parse_selector("app=retired")) == ["worker-1"]))
    assert items_of(hpa_get(server, pki, WORKERS)) == [("Pod", "worker-3", "9")]
    assert len([query for query, _ in kube.pod_requests if "watch=" not in query]) == 1


def test_an_expired_watch_lists_again(server: ServerThread, pki: Pki, kube: FakeKubeApiServer) -> None:
    cache = server.server.pods
    assert cache is not None
    # GIVEN the apiserver expires the open watch (410) WHEN a pod starts meanwhile THEN a relist finds it
    assert kube.watching.wait(10)
    kube.expire_watches()
    kube.add_pod("shop", "worker-3", {"app": "worker"})
    server.call(until(cache, pods_in(server, {"worker-1", "worker-2", "worker-3", "web-1"})))
    assert ("Pod", "worker-3", "9") in items_of(hpa_get(server, pki, WORKERS))
    assert len([query for query, _ in kube.pod_requests if "watch=" not in query]) == 2


def test_selected_pods_without_pod_level_series_is_a_404(server: ServerThread, pki: Pki) -> None:
    path = (
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/jobs_in_progress?labelSelector=app%3Dweb"
    )
    reply = hpa_get(server, pki, path)
    assert reply.status == 404
    assert "no fresh pod-level series" in reply.json()["message"]
    path = (
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/jobs_in_progress?labelSelector=app%3Dnone"
    )
    assert hpa_get(server, pki, path).status == 404


def test_a_single_pod_by_name_is_one_item(server: ServerThread, pki: Pki) -> None:
    path = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/worker-2/jobs_in_progress"
    reply = hpa_get(server, pki, path)
    assert reply.json()["items"][0]["metricName"] == "jobs_in_progress"
    assert items_of(reply) == [("Pod", "worker-2", "500m")]


def test_pods_listed_beyond_the_cap_are_left_out(tmp_path: Path, kube: FakeKubeApiServer) -> None:
    # GIVEN a cache that may hold 2 pods, over a kube-apiserver with 4
    async def listed() -> tuple[int, int]:
        client = KubeClient(from_kubeconfig(kube.write_kubeconfig()), timeout_seconds=5)
        cache = PodCache(client, max_pods=2)
        task = asyncio.create_task(cache.run())
        try:
            await until(cache, cache.synced.is_set)
            await asyncio.to_thread(kube.watching.wait, 10)
            return len(cache), cache.left_out
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    # THEN it holds 2 and counts the 2 left out
    assert asyncio.run(listed()) == (2, 2)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_raw_on_the_pods_path(server: ServerThread, pki: Pki) -> None:
    # GIVEN kubectl with a client certificate WHEN it gets the pods metric with a pod selector
    document = kubectl_get_raw(pki, server.port, WORKERS)
    # THEN one item per selected pod with series
    names = [item["describedObject"]["name"] for item in document["items"]]
    assert names == ["worker-1", "worker-2"]
