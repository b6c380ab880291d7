"""The serving TLS context: created once, its certificate reloaded in place when the files change.

``SSLContext.load_cert_chain`` on the live context applies to every later handshake, so a rotated
certificate (cert-manager, a Secret update) is served without a restart. Client certificates are
requested, not required (``CERT_OPTIONAL``), against both the client CA and the requestheader CA;
:mod:`.authn` then decides which CA issued a certificate. CAs can only be added to a live context, so
a CA removed from the configuration still passes the handshake but no longer authenticates anyone.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


def create_ssl_context(cert_file: str, key_file: str, client_cas: bytes = b"") -> ssl.SSLContext:
    """A TLS 1.2+ server context with the serving certificate and the CAs client certificates may chain to."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert_file, key_file)
    context.verify_mode = ssl.CERT_OPTIONAL
    if client_cas.strip():
        context.load_verify_locations(cadata=client_cas.decode())
    return context


def _load_checked(context: ssl.SSLContext, certificate: bytes, key: bytes) -> None:
    """Load a pair into ``context`` only after it loaded into a scratch context.

    A mismatched pair would otherwise leave the live context with a certificate and no key.
    """
    with tempfile.TemporaryDirectory(prefix="tidegauge-tls-") as directory:
        certificate_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        certificate_path.write_bytes(certificate)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certificate_path, key_path)
        context.load_cert_chain(certificate_path, key_path)


class ServingTls:
    """Owns the serving context; :meth:`reload_if_changed` is polled by a background task."""

    def __init__(self, cert_file: str, key_file: str, client_cas: bytes = b"") -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._fingerprint = self._read_fingerprint()
        self.context = create_ssl_context(cert_file, key_file, client_cas)
        self._trusted = client_cas.strip()

    def reload_if_changed(self) -> bool:
        """Load the certificate again if either file's content changed; True when it did.

        A pair that does not load (e.g. caught between writing the certificate and the key) is logged
        and retried at the next poll; the previous certificate keeps being served.
        """
        try:
            certificate, key = Path(self.cert_file).read_bytes(), Path(self.key_file).read_bytes()
            fingerprint = hashlib.sha256(certificate + b"\0" + key).digest()
            if fingerprint == self._fingerprint:
                return False
            _load_checked(self.context, certificate, key)
        except (OSError, ssl.SSLError) as error:
            logger.warning("serving certificate not reloaded, keeping the current one: %s", error)
            return False
        self._fingerprint = fingerprint
        logger.info("reloaded the serving certificate from %s", self.cert_file)
        return True

    def _read_fingerprint(self) -> bytes:
        certificate, key = Path(self.cert_file).read_bytes(), Path(self.key_file).read_bytes()
        return hashlib.sha256(certificate + b"\0" + key).digest()

    def trust_client_cas(self, client_cas: bytes) -> None:
        """Let certificates of newly configured CAs through the handshake (rotation)."""
        bundle = client_cas.strip()
        if not bundle or bundle == self._trusted:
            return
        try:
            self.context.load_verify_locations(cadata=bundle.decode())
        except (ssl.SSLError, ValueError) as error:
            logger.warning("client CA bundle not loaded into the TLS context: %s", error)
            return
        self._trusted = bundle
        logger.info("client CA bundles updated for new TLS connections")
