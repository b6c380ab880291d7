"""The server's settings: one object, built once from flags (which beat the environment)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class AuthorizationMode(enum.Enum):
    """How an authenticated request is authorized."""

    WEBHOOK = "Webhook"
    """SubjectAccessReview against the kube-apiserver (the in-cluster default)."""
    ALWAYS_ALLOW_AUTHENTICATED = "AlwaysAllowAuthenticated"
    """Every authenticated user may read everything (local use, tests)."""


DEFAULT_USERNAME_HEADERS = ("X-Remote-User",)
DEFAULT_GROUP_HEADERS = ("X-Remote-Group",)
DEFAULT_EXTRA_HEADERS_PREFIXES = ("X-Remote-Extra-",)
DEFAULT_RESPONSE_CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticationFlags:
    """The k8s.io/apiserver authentication flags; None means "take it from the ConfigMap, if read"."""

    client_ca_file: str | None = None
    requestheader_client_ca_file: str | None = None
    requestheader_allowed_names: tuple[str, ...] | None = None
    requestheader_username_headers: tuple[str, ...] | None = None
    requestheader_group_headers: tuple[str, ...] | None = None
    requestheader_extra_headers_prefix: tuple[str, ...] | None = None
    authentication_kubeconfig: str | None = None
    skip_lookup: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """Bounds of each connection of the secure port (see ``docs/server.md``, "Bounds").

    Modelled on k8s.io/apiserver's ``http.Server`` (MaxHeaderBytes 1 MiB, ReadHeaderTimeout 32 s,
    IdleTimeout 90 s), tighter where this server's one small GET API allows it:
    ``max_connections * max_header_bytes`` stays within the pod's memory.
    """

    max_connections: int = 1000
    """Open connections at most; beyond it the oldest idle one is closed, else the new one is refused."""
    header_read_timeout_seconds: float = 10.0
    """Time from accepting a connection (TLS handshake included), or from a request's first byte, to
    the end of its header block; slower clients are disconnected (Go's ReadHeaderTimeout)."""
    idle_timeout_seconds: float = 90.0
    """How long a keep-alive connection may wait for its next request (Go's IdleTimeout)."""
    max_header_bytes: int = 64 * 1024
    """Request line and header block together, at most; more is answered 431 and closed."""
    max_header_line_bytes: int = 16 * 1024
    """One header line or the request line, at most (aiohttp's max_line_size/max_field_size): 400."""
    max_headers: int = 128
    """Header fields in one request, at most: 400."""


SERVICE_ACCOUNT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True, slots=True, kw_only=True)
class DelegateSettings:
    """Where external metrics tidegauge does not hold are forwarded (``--delegate-external-metrics``)."""

    url: str
    """Base URL of the other adapter, e.g. ``https://keda-operator-metrics-apiserver.keda.svc:443``."""
    ca_file: str | None = None
    """CA bundle that verifies the delegate's serving certificate (None: the system's trust store)."""
    token_file: str | None = SERVICE_ACCOUNT_TOKEN_FILE
    """Bearer token tidegauge presents to the delegate, re-read when the file changes (None: no token)."""
    timeout_seconds: float = 1.0
    """Deadline of one forwarded request; below ``request_timeout_seconds`` so a slow delegate is a 503."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Answers of the delegate longer than this are refused (503), never buffered whole."""
    max_connections: int = 32
    """Pooled connections to the delegate at most."""
    held_refresh_seconds: float = 5.0
    """How often the set of names tidegauge holds itself is refreshed from the store."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KedaScalerSettings:
    """KEDA's external scaler over gRPC on its own port (``--keda-scaler-port``), from ``tidegauge[keda]``."""

    port: int
    """The gRPC port (TLS with the serving certificate of ``--tls-cert-file``); 0 picks a free one."""
    client_ca_file: str | None = None
    """CA bundle client certificates must chain to (KEDA's ``tlsClientCert``); None: none asked for."""
    stream_interval_seconds: float = 0.5
    """How often an open ``StreamIsActive`` re-reads its metric to push a change of activity."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Everything ``tidegauge serve`` needs; see ``docs/server.md`` for the flags behind each field."""

    bind_address: str = "0.0.0.0"
    secure_port: int = 6443
    tls_cert_file: str
    tls_private_key_file: str
    metrics_bind_address: str = "0.0.0.0"
    metrics_port: int | None = 9090
    redis_url: str | None = None
    redis_url_file: str | None = None
    """A file holding the Redis URL, re-read every ``tls_reload_interval_seconds``; beats ``redis_url``."""
    config_path: str | None = None
    authentication: AuthenticationFlags = field(default_factory=AuthenticationFlags)
    authorization_mode: AuthorizationMode = AuthorizationMode.WEBHOOK
    authorization_kubeconfig: str | None = None
    request_timeout_seconds: float = 2.0
    """Deadline of one request, from its headers to its answer (authentication, authorization and
    Redis together); well below the aggregator's timeouts."""
    shutdown_timeout_seconds: float = 20.0
    """How long SIGTERM waits for in-flight requests before closing their connections."""
    shutdown_delay_seconds: float = 0.0
    """After SIGTERM, keep serving this long with readiness failing (endpoint removal propagates)."""
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    metrics_max_connections: int = 32
    """Connection cap of the plain ``/metrics`` port (one scraper needs one or two)."""
    tls_reload_interval_seconds: float = 5.0
    authentication_refresh_seconds: float = 60.0
    """How often the ``extension-apiserver-authentication`` ConfigMap is re-read (CA rotation)."""
    auth_cache_ttl_seconds: float = 10.0
    auth_cache_size: int = 10_000
    response_cache_seconds: float = 1.0
    """Identical metric requests within this many seconds share one Redis read (0 disables)."""
    response_cache_bytes: int = DEFAULT_RESPONSE_CACHE_BYTES
    """Rendered answers kept for ``response_cache_seconds``, in bytes at most."""
    max_query_length: int = 8192
    delegate: DelegateSettings | None = None
    """Forward external metrics tidegauge does not hold to another adapter (None: answer 404 for them)."""
    keda_scaler: KedaScalerSettings | None = None
    """Serve KEDA's external scaler (gRPC) beside the API (None: not served)."""
