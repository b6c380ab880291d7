"""``tidegauge serve``: flags (named as k8s.io/apiserver's where they exist) -> settings -> run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from tidegauge import environment
from tidegauge.config import DEFAULT_CONFIG_YAML, Config, load_config, parse_config
from tidegauge.errors import OperationFailed
from tidegauge.server.backend import RedisUrlFile
from tidegauge.server.runner import SettingsError, serve
from tidegauge.server.settings import (
    DEFAULT_RESPONSE_CACHE_BYTES,
    SERVICE_ACCOUNT_TOKEN_FILE,
    AuthenticationFlags,
    AuthorizationMode,
    ConnectionLimits,
    DelegateSettings,
    KedaScalerSettings,
    ServerSettings,
)

logger = logging.getLogger(__name__)


def _list_flag(parser: argparse._ArgumentGroup, name: str, help_text: str) -> None:
    parser.add_argument(
        name, action="append", metavar="A,B", help=f"{help_text} (comma-separated, repeatable)"
    )


_BOUND_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--max-connections", "max_connections", int, "open connections at most"),
    ("--header-read-timeout", "header_read_timeout_seconds", float, "time for TLS handshake and headers, s"),
    ("--idle-timeout", "idle_timeout_seconds", float, "keep-alive time between requests, s"),
    ("--max-header-bytes", "max_header_bytes", int, "request line and headers together, bytes"),
    ("--max-header-line-bytes", "max_header_line_bytes", int, "one header line or the request line, bytes"),
    ("--max-headers", "max_headers", int, "header fields per request"),
)
"""The ConnectionLimits flags: flag, field, type, help."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    serving = parser.add_argument_group("serving")
    serving.add_argument(
        "--bind-address", default="0.0.0.0", help="address of the secure port (default 0.0.0.0)"
    )
    serving.add_argument("--secure-port", type=int, default=6443, help="HTTPS port (default 6443)")
    serving.add_argument(
        "--tls-cert-file", required=True, help="serving certificate (PEM); reloaded when it changes"
    )
    serving.add_argument("--tls-private-key-file", required=True, help="key of the serving certificate (PEM)")
    serving.add_argument(
        "--metrics-port", type=int, default=9090, help="plain-HTTP /metrics port; 0 disables"
    )
    serving.add_argument("--metrics-bind-address", default="0.0.0.0", help="address of the /metrics port")
    authentication = parser.add_argument_group("authentication (flags override the cluster's ConfigMap)")
    authentication.add_argument(
        "--client-ca-file", help="CA bundle of client certificates (user = CN, groups = O)"
    )
    authentication.add_argument(
        "--requestheader-client-ca-file", help="CA bundle of the front proxy's certificate"
    )
    _list_flag(
        authentication, "--requestheader-allowed-names", "front-proxy certificate CNs allowed (empty = any)"
    )
    _list_flag(authentication, "--requestheader-username-headers", "headers holding the user (X-Remote-User)")
    _list_flag(authentication, "--requestheader-group-headers", "headers holding the groups (X-Remote-Group)")
    _list_flag(authentication, "--requestheader-extra-headers-prefix", "prefixes of user-extra headers")
    authentication.add_argument(
        "--authentication-kubeconfig", help="kubeconfig for TokenReview and the ConfigMap"
    )
    authentication.add_argument(
        "--authentication-skip-lookup",
        action="store_true",
        help="do not read kube-system/extension-apiserver-authentication",
    )
    authorization = parser.add_argument_group("authorization")
    authorization.add_argument(
        "--authorization-mode",
        choices=[mode.value for mode in AuthorizationMode],
        default=AuthorizationMode.WEBHOOK.value,
        help="Webhook (SubjectAccessReview, default) or AlwaysAllowAuthenticated (local use)",
    )
    authorization.add_argument("--authorization-kubeconfig", help="kubeconfig for SubjectAccessReview")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--redis-url", help=f"Redis URL; beats ${environment.REDIS_URL} and the config's redis.url"
    )
    data.add_argument(
        "--redis-url-file",
        default=os.environ.get(environment.REDIS_URL_FILE) or None,
        help=f"file holding the Redis URL, e.g. a mounted Secret key (default ${environment.REDIS_URL_FILE});"
        " re-read while serving, so a rotated password needs no restart; beats --redis-url",
    )
    data.add_argument(
        "--config", help=f"YAML/JSON config file (default ${environment.CONFIG_FILE}, else built-in)"
    )
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument("--request-timeout", type=float, default=2.0, help="backend budget per request, s")
    tuning.add_argument("--shutdown-timeout", type=float, default=20.0, help="drain time on SIGTERM, s")
    tuning.add_argument(
        "--shutdown-delay-duration",
        type=float,
        default=0.0,
        help="after SIGTERM, keep serving this long (s) with /readyz failing, then drain",
    )
    tuning.add_argument(
        "--response-cache-seconds", type=float, default=1.0, help="share metric reads this long"
    )
    tuning.add_argument(
        "--tls-reload-interval", type=float, default=5.0, help="certificate file poll period, s"
    )
    tuning.add_argument(
        "--response-cache-bytes",
        type=int,
        default=DEFAULT_RESPONSE_CACHE_BYTES,
        help="size bound of the shared answers, bytes",
    )
    _delegate_arguments(parser)
    _keda_arguments(parser)
    limits = ConnectionLimits()
    bounds = parser.add_argument_group("connection bounds (see docs/server.md, Bounds)")
    for flag, field_name, kind, help_text in _BOUND_FLAGS:
        bounds.add_argument(flag, type=kind, default=getattr(limits, field_name), help=help_text)


def _delegate_arguments(parser: argparse.ArgumentParser) -> None:
    delegate = parser.add_argument_group("delegation (see docs/keda.md)")
    delegate.add_argument(
        "--delegate-external-metrics",
        metavar="URL",
        default=os.environ.get(environment.DELEGATE_EXTERNAL_METRICS) or None,
        help="forward external metrics tidegauge does not hold to this adapter, e.g. "
        "https://keda-operator-metrics-apiserver.keda.svc:443 "
        f"(default ${environment.DELEGATE_EXTERNAL_METRICS})",
    )
    delegate.add_argument(
        "--delegate-ca-file",
        default=os.environ.get(environment.DELEGATE_CA_FILE) or None,
        help="CA bundle verifying the delegate's serving certificate "
        f"(default ${environment.DELEGATE_CA_FILE}, else the system's)",
    )
    delegate.add_argument(
        "--delegate-token-file",
        default=os.environ.get(environment.DELEGATE_TOKEN_FILE) or SERVICE_ACCOUNT_TOKEN_FILE,
        help="bearer token presented to the delegate, re-read when it rotates; '' sends none "
        f"(default ${environment.DELEGATE_TOKEN_FILE}, else {SERVICE_ACCOUNT_TOKEN_FILE})",
    )
    delegate.add_argument(
        "--delegate-timeout",
        default=os.environ.get(environment.DELEGATE_TIMEOUT) or "1.0",
        help=f"deadline of one forwarded request, s (default ${environment.DELEGATE_TIMEOUT}, else 1.0)",
    )


def _keda_arguments(parser: argparse.ArgumentParser) -> None:
    keda = parser.add_argument_group("KEDA external scaler (needs tidegauge[keda]; see docs/keda.md)")
    keda.add_argument(
        "--keda-scaler-port",
        default=os.environ.get(environment.KEDA_SCALER_PORT) or None,
        help="also serve KEDA's external scaler (gRPC over TLS with the serving certificate) on this port "
        f"(default ${environment.KEDA_SCALER_PORT}; unset or 0: not served)",
    )
    keda.add_argument(
        "--keda-scaler-client-ca-file",
        default=os.environ.get(environment.KEDA_SCALER_CLIENT_CA_FILE) or None,
        help="require client certificates (KEDA's tlsClientCert) that chain to this CA bundle "
        f"(default ${environment.KEDA_SCALER_CLIENT_CA_FILE})",
    )


def _keda_settings(args: argparse.Namespace) -> KedaScalerSettings | None:
    text = args.keda_scaler_port
    if text is None:
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SettingsError(f"--keda-scaler-port must be a port number (1-65535, 0: off), not {text!r}")
    if port == 0:
        return None
    return KedaScalerSettings(port=port, client_ca_file=args.keda_scaler_client_ca_file)


def _delegate_settings(args: argparse.Namespace) -> DelegateSettings | None:
    url: str | None = args.delegate_external_metrics
    if not url:
        return None
    if not url.startswith("https://"):
        raise SettingsError(
            f"--delegate-external-metrics {url!r}: give an https:// URL "
            "(e.g. https://keda-operator-metrics-apiserver.keda.svc:443)"
        )
    try:
        timeout = float(args.delegate_timeout)
    except ValueError:
        timeout = 0.0
    if not timeout > 0:
        raise SettingsError(
            f"--delegate-timeout must be a positive number of seconds, not {args.delegate_timeout!r}"
        )
    if timeout >= args.request_timeout:
        raise SettingsError(
            f"--delegate-timeout ({timeout:g} s) must be below --request-timeout "
            f"({args.request_timeout:g} s), so that a slow delegate is a 503 within the request's deadline"
        )
    return DelegateSettings(
        url=url,
        ca_file=args.delegate_ca_file,
        token_file=args.delegate_token_file or None,
        timeout_seconds=timeout,
    )


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def settings_from(args: argparse.Namespace) -> ServerSettings:
    for flag in (*(bound[0] for bound in _BOUND_FLAGS), "--request-timeout"):
        value = getattr(args, _dest(flag))
        if not value > 0:
            raise SettingsError(f"{flag} must be a positive number, not {value!r} (leave it out: default)")
    if args.shutdown_delay_duration < 0:
        raise SettingsError("--shutdown-delay-duration must be 0 or more seconds")
    return ServerSettings(
        bind_address=args.bind_address,
        secure_port=args.secure_port,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        metrics_bind_address=args.metrics_bind_address,
        metrics_port=args.metrics_port or None,
        redis_url=args.redis_url,
        redis_url_file=args.redis_url_file,
        config_path=args.config or os.environ.get(environment.CONFIG_FILE) or None,
        authentication=AuthenticationFlags(
            client_ca_file=args.client_ca_file,
            requestheader_client_ca_file=args.requestheader_client_ca_file,
            requestheader_allowed_names=_split(args.requestheader_allowed_names),
            requestheader_username_headers=_split(args.requestheader_username_headers),
            requestheader_group_headers=_split(args.requestheader_group_headers),
            requestheader_extra_headers_prefix=_split(args.requestheader_extra_headers_prefix),
            authentication_kubeconfig=args.authentication_kubeconfig,
            skip_lookup=args.authentication_skip_lookup,
        ),
        authorization_mode=AuthorizationMode(args.authorization_mode),
        authorization_kubeconfig=args.authorization_kubeconfig,
        request_timeout_seconds=args.request_timeout,
        shutdown_timeout_seconds=args.shutdown_timeout,
        shutdown_delay_seconds=args.shutdown_delay_duration,
        response_cache_bytes=args.response_cache_bytes,
        connections=ConnectionLimits(
            **{field_name: getattr(args, _dest(flag)) for flag, field_name, _, _ in _BOUND_FLAGS}
        ),
        response_cache_seconds=args.response_cache_seconds,
        tls_reload_interval_seconds=args.tls_reload_interval,
        delegate=_delegate_settings(args),
        keda_scaler=_keda_settings(args),
    )


def load_server_config(settings: ServerSettings) -> Config:
    """The config file's content (or the built-in one), with the Redis URL from the URL file, the flag or
    the environment, in that order."""
    redis_url = settings.redis_url
    if settings.redis_url_file:
        redis_url = RedisUrlFile(settings.redis_url_file).url
    if settings.config_path:
        return load_config(settings.config_path, redis_url=redis_url)
    return parse_config(DEFAULT_CONFIG_YAML, "<built-in>", redis_url=redis_url)


def run(args: argparse.Namespace) -> int:
    """Serve until a signal; bad flags or config are usage errors (exit 2) by the ``tidegauge`` contract."""
    settings = settings_from(args)
    config = load_server_config(settings)
    try:
        return asyncio.run(serve(settings, config))
    except OSError as error:  # a TLS file that cannot be read, a port that cannot be bound
        raise ServeFailed(str(error)) from error


class ServeFailed(OperationFailed):
    """The server could not start: a file it needs is unreadable or its port cannot be bound."""

    hint = "check the --tls-cert-file / --tls-private-key-file paths and that the ports are free"
