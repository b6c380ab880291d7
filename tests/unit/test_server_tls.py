"""The serving context keeps a working certificate while files on disk change under it."""

from __future__ import annotations

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


def test_new_client_cas_are_trusted_once(tmp_path: Path) -> None:
    ca = CertificateAuthority("ca")
    tls = ServingTls(*ca.issue_server().write(tmp_path, "serving"), client_cas=ca.pem)
    before = tls.context.cert_store_stats()["x509_ca"]
    tls.trust_client_cas(ca.pem)
    tls.trust_client_cas(CertificateAuthority("other").pem)
    assert tls.context.cert_store_stats()["x509_ca"] == before + 1
