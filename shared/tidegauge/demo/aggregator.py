"""The HPA's side of the wire: External and Object metrics fetched as the aggregator forwards them.

The aggregator connects with its front-proxy client certificate and passes the HPA controller's
identity in ``X-Remote-User``/``X-Remote-Group`` headers (one header per group); the HPA asks for
protobuf first and accepts JSON. Like the controller, the client sums the items' milli-values; any
answer other than a 200 list with items is a failed fetch, on which the HPA holds its replicas.
"""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from tidegauge.quantity import milli_value

logger = logging.getLogger(__name__)

HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
HPA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")
HPA_ACCEPT = "application/vnd.kubernetes.protobuf, */*"
EXTERNAL_METRICS_PATH = "/apis/external.metrics.k8s.io/v1beta1"
CUSTOM_METRICS_PATH = "/apis/custom.metrics.k8s.io/v1beta2"
TIMEOUT_SECONDS = 5.0

_SUFFIX_EXPONENTS = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


class QuantityParseError(ValueError):
    """A value string that is not a decimal-SI Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """A decimal-SI quantity string (``1500m``, ``2k``, ``3``) as an exact Decimal."""
    number, suffix = text, ""
    if text and text[-1] in _SUFFIX_EXPONENTS:
        number, suffix = text[:-1], text[-1]
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise QuantityParseError(f"not a Kubernetes quantity: {text!r}") from None
    if not value.is_finite():
        raise QuantityParseError(f"not a finite quantity: {text!r}")
    return value.scaleb(_SUFFIX_EXPONENTS[suffix])


def parse_timestamp(text: str) -> float:
    """An RFC 3339 timestamp with a zone (``2026-11-26T10:30:00Z``) as Unix seconds."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    return moment.timestamp()


@dataclass(frozen=True)
class MetricReading:
    """One successful fetch: the items' sum (as the HPA computes it) and the newest item's age."""

    value: float
    items: int
    age_seconds: float


@dataclass(frozen=True)
class FailedReading:
    """A fetch the HPA counts as failed: HTTP status (0 when none came back) and the Status message."""

    status: int
    message: str


def external_metric_path(namespace: str, metric: str, selector: str) -> str:
    """The HPA's request path, the selector URL-encoded with spaces as ``+`` (client-go's encoding)."""
    path = f"{EXTERNAL_METRICS_PATH}/namespaces/{quote(namespace, safe='')}/{quote(metric, safe='')}"
    return f"{path}?labelSelector={quote_plus(selector)}" if selector else path


def object_metric_path(namespace: str, resource: str, name: str, metric: str) -> str:
    """The HPA's request path for an Object metric (custom.metrics.k8s.io v1beta2)."""
    parts = (namespace, resource, name, metric)
    return f"{CUSTOM_METRICS_PATH}/namespaces/" + "/".join(quote(part, safe="") for part in parts)


def object_value(body: Any, now: float) -> MetricReading:
    """An Object metric's MetricValueList as the HPA reads it: exactly one item; raises ValueError."""
    if not isinstance(body, dict) or body.get("kind") != "MetricValueList":
        raise ValueError("the answer is not a MetricValueList")
    items = body.get("items")
    if not isinstance(items, list) or len(items) != 1:
        raise ValueError(f"an Object metric needs exactly one item, got {len(items or [])}")
    (item,) = items
    value = milli_value(parse_quantity(str(item["value"]))) / 1000
    age = max(0.0, now - parse_timestamp(str(item["timestamp"])))
    return MetricReading(value=value, items=1, age_seconds=age)


def sum_items(body: Any, now: float) -> MetricReading:
    """Sum an ExternalMetricValueList's items like the HPA (milli-values); raises ValueError if malformed."""
    if not isinstance(body, dict) or body.get("kind") != "ExternalMetricValueList":
        raise ValueError("the answer is not an ExternalMetricValueList")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ValueError("no metrics returned from external metrics API")
    total_milli = 0
    newest = float("-inf")
    for item in items:
        total_milli += milli_value(parse_quantity(str(item["value"])))
        newest = max(newest, parse_timestamp(str(item["timestamp"])))
    return MetricReading(value=total_milli / 1000, items=len(items), age_seconds=max(0.0, now - newest))


class AggregatorClient:
    """A keep-alive HTTPS connection to the server, presenting the front-proxy client certificate."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        server_ca: Path,
        client_certificate: Path,
        client_key: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._port = port
        self._context = ssl.create_default_context(cafile=str(server_ca))
        self._context.load_cert_chain(str(client_certificate), str(client_key))
        self._clock = clock
        self._connection: http.client.HTTPSConnection | None = None
        self.requests = 0

    def fetch(self, namespace: str, metric: str, selector: str) -> MetricReading | FailedReading:
        """GET one External metric as the HPA does."""
        return self._fetch(external_metric_path(namespace, metric, selector), sum_items)

    def fetch_object(
        self, namespace: str, resource: str, name: str, metric: str
    ) -> MetricReading | FailedReading:
        """GET one Object metric (``metric`` of ``resource`` ``namespace/name``) as the HPA does."""
        return self._fetch(object_metric_path(namespace, resource, name, metric), object_value)

    def _fetch(self, path: str, read: Callable[[Any, float], MetricReading]) -> MetricReading | FailedReading:
        try:
            status, body = self._get(path)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return FailedReading(0, f"request failed: {error}")
        try:
            document = json.loads(body)
        except ValueError:
            return FailedReading(status, "the answer is not JSON")
        if status != 200:
            message = document.get("message", "") if isinstance(document, dict) else ""
            return FailedReading(status, str(message))
        try:
            return read(document, self._clock())
        except (ValueError, KeyError, TypeError) as error:
            return FailedReading(status, str(error))

    def _get(self, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.putrequest("GET", path, skip_accept_encoding=True)
                connection.putheader("Accept", HPA_ACCEPT)
                connection.putheader("User-Agent", "kube-controller-manager/v1.33.0 (tidegauge-demo)")
                connection.putheader("X-Remote-User", HPA_USER)
                for group in HPA_GROUPS:
                    connection.putheader("X-Remote-Group", group)
                connection.endheaders()
                response = connection.getresponse()
                body = response.read()
                self.requests += 1
                if response.will_close:
                    self.close()
                return response.status, body
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # A kept-alive connection the server closed: reconnect once, as client-go does.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPSConnection:
        if self._connection is None:
            self._connection = http.client.HTTPSConnection(
                self._host, self._port, context=self._context, timeout=TIMEOUT_SECONDS
            )
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
