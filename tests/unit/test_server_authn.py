"""Authentication order and identity extraction, on real certificates (DER, as ssl hands them over)."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from multidict import CIMultiDict

from tests.support.pki import CertificateAuthority, Issued
from tidegauge.server.authconfig import AuthenticationConfig
from tidegauge.server.authn import ANONYMOUS, Authenticator, UserInfo

CLIENT_CA = CertificateAuthority("client-ca")
PROXY_CA = CertificateAuthority("proxy-ca")
CONFIG = AuthenticationConfig(
    client_ca=CLIENT_CA.pem, requestheader_ca=PROXY_CA.pem, allowed_names=("aggregator",)
)


def der(issued: Issued) -> bytes:
    return x509.load_pem_x509_certificate(issued.certificate_pem).public_bytes(serialization.Encoding.DER)


class Reviewer:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls = 0

    async def create_token_review(self, token: str) -> dict[str, Any]:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def authenticate(
    certificate: bytes | None, headers: list[tuple[str, str]], reviewer: Reviewer | None = None
) -> UserInfo:
    return asyncio.run(Authenticator(CONFIG, reviewer).authenticate(certificate, CIMultiDict(headers)))


def test_front_proxy_identity_comes_from_the_headers() -> None:
    headers = [
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "a"),
        ("X-Remote-Group", "b"),
        ("X-Remote-Extra-Reason", "x"),
        ("x-remote-extra-Example.org%2FKey", "y"),
    ]
    user = authenticate(der(PROXY_CA.issue("aggregator")), headers)
    assert (user.name, user.groups, user.method) == (
        "alice",
        ("a", "b", "system:authenticated"),
        "front-proxy",
    )
    assert user.extra == (("example.org/key", ("y",)), ("reason", ("x",)))


def test_front_proxy_certificate_without_user_header_falls_through_to_anonymous() -> None:
    assert authenticate(der(PROXY_CA.issue("aggregator")), []) == ANONYMOUS


def test_proxy_certificate_with_another_cn_is_not_trusted() -> None:
    assert authenticate(der(PROXY_CA.issue("intruder")), [("X-Remote-User", "admin")]) == ANONYMOUS


def test_client_certificate_is_its_cn_and_organizations_never_the_headers() -> None:
    user = authenticate(der(CLIENT_CA.issue("bob", ("team", "ops"))), [("X-Remote-User", "admin")])
    assert (user.name, user.groups, user.method) == (
        "bob",
        ("team", "ops", "system:authenticated"),
        "client-certificate",
    )


def test_certificate_of_an_unknown_ca_is_anonymous() -> None:
    stranger = CertificateAuthority("stranger").issue("aggregator")
    assert authenticate(der(stranger), [("X-Remote-User", "admin")]) == ANONYMOUS


def test_certificate_without_client_auth_usage_is_anonymous() -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server_only = CLIENT_CA.issue("bob", usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    assert authenticate(der(server_only), []) == ANONYMOUS


def test_bearer_token_is_reviewed_and_cached() -> None:
    reviewer = Reviewer({"authenticated": True, "user": {"username": "sa", "groups": ["g"], "uid": "7"}})
    authenticator = Authenticator(CONFIG, reviewer)
    headers = CIMultiDict([("Authorization", "Bearer abc")])
    users = [asyncio.run(authenticator.authenticate(None, headers)) for _ in range(3)]
    assert users[0] == UserInfo("sa", ("g", "system:authenticated"), (), "7", "token") == users[2]
    assert reviewer.calls == 1


def test_rejected_or_failed_token_review_is_anonymous() -> None:
    assert (
        authenticate(None, [("Authorization", "Bearer x")], Reviewer({"authenticated": False})) == ANONYMOUS
    )
    assert authenticate(None, [("Authorization", "Bearer x")], Reviewer(OSError("down"))) == ANONYMOUS


def test_authentication_config_update_changes_trusted_cas() -> None:
    # GIVEN an authenticator WHEN the proxy CA rotates THEN old proxy certificates stop authenticating
    authenticator = Authenticator(CONFIG, None)
    old, headers = der(PROXY_CA.issue("aggregator")), CIMultiDict([("X-Remote-User", "u")])
    assert asyncio.run(authenticator.authenticate(old, headers)).name == "u"
    authenticator.update(AuthenticationConfig(requestheader_ca=CertificateAuthority("new").pem))
    assert asyncio.run(authenticator.authenticate(old, headers)) == ANONYMOUS
