"""Authentication, in the contract's order: front proxy, client CA, bearer token, anonymous.

1. Front proxy: the TLS client certificate was issued by the requestheader CA, allows clientAuth and its
   CN is in the allowed names (none configured = any); the user then comes from the username headers
   (``X-Remote-User``), groups from every group header, extra from ``X-Remote-Extra-<key>`` (key
   lower-cased and URL-unescaped). Without such a certificate those headers are never read.
   A valid proxy certificate with no username header falls through, as upstream.
2. Client CA: a certificate issued by the client CA: user = CN, groups = O.
3. ``Authorization: Bearer`` token: TokenReview, answers (accept and reject) cached ``ttl`` seconds.
4. Anonymous (``system:anonymous`` / ``system:unauthenticated``).
Every authenticated user also gets ``system:authenticated``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from multidict import MultiMapping

from tidegauge.server import certs
from tidegauge.server.authconfig import AuthenticationConfig
from tidegauge.server.cache import TtlCache

logger = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
_CERTIFICATE_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    uid: str = ""
    method: str = "anonymous"

    @property
    def anonymous(self) -> bool:
        return self.method == "anonymous"


ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


def _authenticated(
    name: str, groups: list[str], extra: dict[str, list[str]], uid: str, method: str
) -> UserInfo:
    if AUTHENTICATED_GROUP not in groups:
        groups.append(AUTHENTICATED_GROUP)
    extra_items = tuple(sorted((key, tuple(values)) for key, values in extra.items()))
    return UserInfo(name, tuple(groups), extra_items, uid, method)


class TokenReviewer(Protocol):
    async def create_token_review(self, token: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class _CertificateVerdict:
    front_proxy: bool
    client: bool
    subject: certs.CertificateSubject
    not_before: float
    not_after: float


class Authenticator:
    """Turns a request's client certificate and headers into a :class:`UserInfo`."""

    def __init__(
        self,
        config: AuthenticationConfig,
        reviewer: TokenReviewer | None,
        *,
        cache_ttl_seconds: float = 10.0,
        cache_size: int = 10_000,
        record: Callable[[str, str], None] = lambda method, outcome: None,
    ) -> None:
        self._reviewer = reviewer
        self._tokens: TtlCache[bytes, tuple[UserInfo | None]] = TtlCache(cache_ttl_seconds, cache_size)
        self._record = record
        self.update(config)

    def update(self, config: AuthenticationConfig) -> None:
        """Use new CAs and header names from now on (certificates are judged again)."""
        self.config = config
        self._client_cas = certs.load_bundle(config.client_ca)
        self._proxy_cas = certs.load_bundle(config.requestheader_ca)
        self._verdicts: dict[bytes, _CertificateVerdict | None] = {}

    async def authenticate(self, peer_certificate: bytes | None, headers: MultiMapping[str]) -> UserInfo:
        verdict = self._verdict(peer_certificate) if peer_certificate else None
        if verdict is not None and verdict.front_proxy:
            user = self._from_headers(headers)
            if user is not None:
                self._record("front-proxy", "authenticated")
                return user
        if verdict is not None and verdict.client:
            self._record("client-certificate", "authenticated")
            subject = verdict.subject
            return _authenticated(
                subject.common_name, list(subject.organizations), {}, "", "client-certificate"
            )
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip() and self._reviewer is not None:
            user = await self._review(token.strip())
            if user is not None:
                return user
        self._record("anonymous", "anonymous")
        return ANONYMOUS

    def _verdict(self, der: bytes) -> _CertificateVerdict | None:
        if der in self._verdicts:
            verdict = self._verdicts[der]
        else:
            verdict = self._judge(der)
            if len(self._verdicts) >= _CERTIFICATE_CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[der] = verdict
        if verdict is None or not verdict.not_before <= time.time() <= verdict.not_after:
            return None
        return verdict

    def _judge(self, der: bytes) -> _CertificateVerdict | None:
        certificate = certs.parse_der(der)
        if certificate is None or not certs.allows_client_auth(certificate):
            return None
        subject = certs.subject_of(certificate)
        allowed = self.config.allowed_names
        front_proxy = certs.issued_by_any(certificate, self._proxy_cas) and (
            not allowed or subject.common_name in allowed
        )
        client = certs.issued_by_any(certificate, self._client_cas) and bool(subject.common_name)
        if not front_proxy and not client:
            logger.info("client certificate %r is not trusted for authentication", subject.common_name)
        return _CertificateVerdict(
            front_proxy,
            client,
            subject,
            certificate.not_valid_before_utc.timestamp(),
            certificate.not_valid_after_utc.timestamp(),
        )

    def _from_headers(self, headers: MultiMapping[str]) -> UserInfo | None:
        config = self.config
        name = next(
            (value for header in config.username_headers for value in headers.getall(header, []) if value), ""
        )
        if not name:
            return None
        groups = [value for header in config.group_headers for value in headers.getall(header, [])]
        extra: dict[str, list[str]] = {}
        for header, value in headers.items():
            lowered = header.lower()
            for prefix in config.extra_headers_prefixes:
                if lowered.startswith(prefix.lower()) and len(header) > len(prefix):
                    extra.setdefault(unquote(header[len(prefix) :]).lower(), []).append(value)
        return _authenticated(name, groups, extra, "", "front-proxy")

    async def _review(self, token: str) -> UserInfo | None:
        assert self._reviewer is not None
        key = hashlib.sha256(token.encode()).digest()
        cached = self._tokens.get(key)
        if cached is not None:
            self._record("token", "authenticated-cached" if cached[0] else "rejected-cached")
            return cached[0]
        try:
            status = await self._reviewer.create_token_review(token)
        except Exception as error:  # any failure of the webhook is "not authenticated", not a 500
            logger.warning("TokenReview failed: %s", error)
            self._record("token", "error")
            return None
        user: UserInfo | None = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            extra = {str(k): [str(v) for v in values] for k, values in (info.get("extra") or {}).items()}
            groups = [str(group) for group in info.get("groups") or []]
            user = _authenticated(
                str(info.get("username", "")), groups, extra, str(info.get("uid", "")), "token"
            )
        self._tokens.put(key, (user,))
        self._record("token", "authenticated" if user else "rejected")
        return user
