"""Serving-certificate rotation across key types, checked with real TLS handshakes on loopback."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest
import trustme

from tests.support.log_event import log_event
from tests.support.server_harness import (
    Pki,
    ServerThread,
    request,
    served_certificate_digest,
    server_config,
    settings_for,
)
from tidegauge.localredis import RedisServer

pytestmark = pytest.mark.integration

ECDSA, RSA = trustme.KeyType.ECDSA, trustme.KeyType.RSA


def served_digest(port: int, ca: trustme.CA) -> str:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return served_certificate_digest(port, context)


def write_leaf(ca: trustme.CA, key_type: trustme.KeyType, cert_file: Path, key_file: Path) -> str:
    """Write a new serving pair of ``key_type``; the SHA-256 of its DER certificate."""
    leaf = ca.issue_cert("localhost", "127.0.0.1", key_type=key_type)
    key_file.write_bytes(leaf.private_key_pem.bytes())
    cert_file.write_bytes(leaf.cert_chain_pems[0].bytes())
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())).hexdigest()


@pytest.mark.parametrize(
    ("first", "second"), [(ECDSA, RSA), (RSA, ECDSA), (ECDSA, ECDSA), (RSA, RSA)], ids=lambda k: k.name
)
def test_rotated_certificate_of_any_key_type_is_served_to_new_connections(
    tmp_path: Path, redis_server: RedisServer, first: trustme.KeyType, second: trustme.KeyType
) -> None:
    ca = trustme.CA()
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    initial = write_leaf(ca, first, cert_file, key_file)
    settings = settings_for(
        Pki(tmp_path / "pki"), tls_cert_file=str(cert_file), tls_private_key_file=str(key_file)
    )
    with ServerThread(settings, server_config(redis_server.url)) as server:
        assert served_digest(server.port, ca) == initial
        # GIVEN the files rotated to a certificate of another (or the same) key type
        with log_event("tidegauge.server.tls", "reloaded the serving certificate") as reloaded:
            rotated = write_leaf(ca, second, cert_file, key_file)
            assert reloaded.wait(10), "the rotated certificate was not loaded"
        # THEN new handshakes get the new certificate, and only it
        assert {served_digest(server.port, ca) for _ in range(5)} == {rotated}
        context = ssl.create_default_context()
        ca.configure_trust(context)
        assert request(server.port, "/healthz", context).status == 200
