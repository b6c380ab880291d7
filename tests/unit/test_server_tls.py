"""The serving context keeps a working certificate while files on disk change under it."""

from __future__ import annotations

import ssl
from pathlib import Path

from tests.support.pki import CertificateAuthority
from tidegauge.server.tls import ServingTls


def test_changed_files_are_reloaded_and_a_mismatched_pair_is_not(tmp_path: Path) -> None:
    ca = CertificateAuthority("ca")
    cert_file, key_file = ca.issue_server().write(tmp_path, "serving")
    tls = ServingTls(cert_file, key_file)
    assert not tls.reload_if_changed()
    # GIVEN a new certificate written before its key WHEN polled in between THEN not loaded, retried later
    rotated = ca.issue_server("rotated")
    Path(cert_file).write_bytes(rotated.certificate_pem)
    assert not tls.reload_if_changed()
    Path(key_file).write_bytes(rotated.key_pem)
    assert tls.reload_if_changed()
    assert not tls.reload_if_changed()


def test_client_cas_are_replaced_in_a_fresh_context(tmp_path: Path) -> None:
    ca = CertificateAuthority("ca")
    tls = ServingTls(*ca.issue_server().write(tmp_path, "serving"), client_cas=ca.pem)
    first = tls.context
    # GIVEN the same bundle THEN nothing changes
    tls.trust_client_cas(ca.pem)
    assert tls.context is first
    # GIVEN another bundle THEN a fresh context trusts exactly it (a removed CA no longer passes)
    other = CertificateAuthority("other")
    tls.trust_client_cas(other.pem)
    assert tls.context is not first
    assert tls.context.cert_store_stats()["x509_ca"] == 1
    assert [ca["subject"] for ca in tls.context.get_ca_certs()] == [
        ca_info["subject"] for ca_info in other_context_cas(other)
    ]


def other_context_cas(ca: CertificateAuthority) -> list[dict[str, object]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_verify_locations(cadata=ca.pem.decode())
    return context.get_ca_certs()  # type: ignore[return-value]
