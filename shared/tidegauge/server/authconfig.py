"""Where the client CAs and front-proxy header names come from: flags, else the cluster's ConfigMap.

``kube-system/extension-apiserver-authentication`` holds ``client-ca-file``,
``requestheader-client-ca-file`` (PEM) and ``requestheader-allowed-names``,
``requestheader-username-headers``, ``requestheader-group-headers``,
``requestheader-extra-headers-prefix`` (JSON arrays in strings). Each flag, when given, overrides its
key. CA files named by flags are re-read on every load, so rotating them on disk works too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tidegauge.server.kube import KubeClient
from tidegauge.server.settings import (
    DEFAULT_EXTRA_HEADERS_PREFIXES,
    DEFAULT_GROUP_HEADERS,
    DEFAULT_USERNAME_HEADERS,
    AuthenticationFlags,
)

logger = logging.getLogger(__name__)

CONFIG_MAP_NAMESPACE = "kube-system"
CONFIG_MAP_NAME = "extension-apiserver-authentication"


@dataclass(frozen=True, slots=True)
class AuthenticationConfig:
    """The CAs (PEM bundles) and header names the authenticator uses."""

    client_ca: bytes = b""
    requestheader_ca: bytes = b""
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = DEFAULT_USERNAME_HEADERS
    group_headers: tuple[str, ...] = DEFAULT_GROUP_HEADERS
    extra_headers_prefixes: tuple[str, ...] = DEFAULT_EXTRA_HEADERS_PREFIXES

    @property
    def all_cas(self) -> bytes:
        """Both bundles, for the TLS context (which must let either kind of client certificate through)."""
        return b"\n".join(
            bundle.strip() for bundle in (self.client_ca, self.requestheader_ca) if bundle.strip()
        )


def _json_list(data: dict[str, str], key: str) -> tuple[str, ...] | None:
    raw = data.get(key)
    if raw is None or not raw.strip():
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        logger.warning("ignoring %s of ConfigMap %s: not a JSON array: %r", key, CONFIG_MAP_NAME, raw[:100])
        return None
    if not isinstance(parsed, list):
        return None
    return tuple(str(item) for item in parsed if str(item))


def _read_file(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def merge(flags: AuthenticationFlags, config_map: dict[str, str] | None) -> AuthenticationConfig:
    """Flags first, then the ConfigMap's keys, then the k8s.io/apiserver defaults."""
    data = config_map or {}
    client_ca = _read_file(flags.client_ca_file)
    requestheader_ca = _read_file(flags.requestheader_client_ca_file)
    return AuthenticationConfig(
        client_ca=client_ca if client_ca is not None else data.get("client-ca-file", "").encode(),
        requestheader_ca=(
            requestheader_ca
            if requestheader_ca is not None
            else data.get("requestheader-client-ca-file", "").encode()
        ),
        allowed_names=_first(
            flags.requestheader_allowed_names, _json_list(data, "requestheader-allowed-names"), ()
        ),
        username_headers=_first(
            flags.requestheader_username_headers,
            _json_list(data, "requestheader-username-headers"),
            DEFAULT_USERNAME_HEADERS,
        ),
        group_headers=_first(
            flags.requestheader_group_headers,
            _json_list(data, "requestheader-group-headers"),
            DEFAULT_GROUP_HEADERS,
        ),
        extra_headers_prefixes=_first(
            flags.requestheader_extra_headers_prefix,
            _json_list(data, "requestheader-extra-headers-prefix"),
            DEFAULT_EXTRA_HEADERS_PREFIXES,
        ),
    )


def _first(*choices: tuple[str, ...] | None) -> tuple[str, ...]:
    return next(choice for choice in choices if choice is not None)


class AuthenticationConfigLoader:
    """Builds :class:`AuthenticationConfig`, reading the ConfigMap when a kube client is given."""

    def __init__(self, flags: AuthenticationFlags, kube: KubeClient | None) -> None:
        self._flags = flags
        self._kube = None if flags.skip_lookup else kube

    async def load(self) -> AuthenticationConfig:
        """Raises ``KubeError`` when the ConfigMap cannot be read, ``OSError`` for a CA file."""
        config_map = None
        if self._kube is not None:
            config_map = await self._kube.read_config_map(CONFIG_MAP_NAMESPACE, CONFIG_MAP_NAME)
        return merge(self._flags, config_map)
