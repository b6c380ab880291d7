"""A config with ``objects:`` rules and the series the custom metrics tests serve from it."""

from __future__ import annotations

from tidegauge.config import Config, parse_config
from tidegauge.model import Sample

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
CUSTOM_V1BETA1 = "/apis/custom.metrics.k8s.io/v1beta1"

CUSTOM_CONFIG = """
version: 1
redis:
  url: redis://127.0.0.1:1/0
sources:
  - name: orders
    type: sqs
    region: eu-west-1
    queues:
      names: [orders]
  - name: web
    type: cloudwatch
    region: eu-west-1
    queries:
      - metric: http_requests_total
        namespace: AWS/ApplicationELB
        metric_name: RequestCount
        stat: Sum
        max_age_seconds: 300
metrics:
  sqs_messages:
    max_age_seconds: 120
exposure:
  - namespaces: [shop, default]
    metrics: ["*"]
  - namespaces: [team-*]
    metrics: [sqs_messages]
    selector: queue=payments
objects:
  - metric: http_requests_total
    resource: deployments.apps
    namespace: shop
    name: "{app}"
  - metric: sqs_messages
    selector: queue=orders
    resource: deployments.apps
    namespace: shop
    name: orders-worker
  - metric: sqs_messages
    resource: namespaces
    name: "{team}"
  - metric: sqs_messages
    resource: services
    namespace: "{team}"
    name: "{queue}-queue"
"""


def custom_config(redis_url: str) -> Config:
    return parse_config(CUSTOM_CONFIG, "<custom-test>", redis_url=redis_url, environ={})


def custom_samples(source_time: float, now: float) -> list[Sample]:
    """``my-app`` at 1250 requests; queue orders (team shop) 1000 visible + 250 in flight, the visible
    one 5 s older; queue payments of team secret; a stale queue of team shop."""
    shop_orders = {"queue": "orders", "team": "shop"}
    secret = {"queue": "payments", "state": "visible", "team": "secret"}
    return [
        Sample.of("http_requests_total", {"app": "my-app"}, 1250, source_time),
        Sample.of("http_requests_total", {"app": "other"}, 7, source_time),
        Sample.of("sqs_messages", {**shop_orders, "state": "visible"}, 1000, source_time - 5),
        Sample.of("sqs_messages", {**shop_orders, "state": "in_flight"}, 250, source_time),
        Sample.of("sqs_messages", secret, 40, source_time),
        Sample.of("sqs_messages", {"queue": "old", "state": "visible", "team": "shop"}, 7, now - 1000),
    ]
