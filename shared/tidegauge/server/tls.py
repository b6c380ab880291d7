"""The serving TLS context: rebuilt whole when the certificate files or the client CAs change.

A rotated certificate (cert-manager, a Secret update) or a changed CA bundle gives a FRESH context,
swapped in for the connections accepted after it (:mod:`.listener` asks for the context of the
moment at each handshake). Loading a new pair into the live context would add it beside the old
one: a change of key type (ECDSA <-> RSA) kept serving the old certificate. Client certificates are
requested, not required (``CERT_OPTIONAL``), against both the client CA and the requestheader CA;
:mod:`.authn` then decides which CA issued a certificate. A CA removed from the configuration no
longer passes the handshake of new connections.
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


def _context_of(certificate: bytes, key: bytes, client_cas: bytes) -> ssl.SSLContext:
    """A fresh serving context of this pair and these CAs (raises for a pair that does not match).

    The pair is written to a private temporary directory: ``load_cert_chain`` reads files only.
    """
    with tempfile.TemporaryDirectory(prefix="tidegauge-tls-") as directory:
        certificate_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        certificate_path.write_bytes(certificate)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        return create_ssl_context(str(certificate_path), str(key_path), client_cas)


class ServingTls:
    """Owns the serving context; :meth:`reload_if_changed` is polled by a background task."""

    def __init__(self, cert_file: str, key_file: str, client_cas: bytes = b"") -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._pair = self._read_pair()
        self.context = _context_of(*self._pair, client_cas)
        self._trusted = client_cas.strip()

    @property
    def pair(self) -> tuple[bytes, bytes]:
        """The (certificate, key) PEM pair being served: the last one that loaded."""
        return self._pair

    def reload_if_changed(self) -> bool:
        """Load the certificate again if either file's content changed; True when it did.

        A pair that does not load (e.g. caught between writing the certificate and the key) is logged
        and retried at the next poll; the previous certificate keeps being served.
        """
        try:
            pair = self._read_pair()
            if pair == self._pair:
                return False
            context = _context_of(*pair, self._trusted)
        except (OSError, ssl.SSLError, ValueError) as error:
            logger.warning("serving certificate not reloaded, keeping the current one: %s", error)
            return False
        self._pair, self.context = pair, context
        logger.info(
            "reloaded the serving certificate from %s (sha256 %s) for new connections",
            self.cert_file,
            hashlib.sha256(pair[0]).hexdigest()[:16],
        )
        return True

    def _read_pair(self) -> tuple[bytes, bytes]:
        return Path(self.cert_file).read_bytes(), Path(self.key_file).read_bytes()

    def trust_client_cas(self, client_cas: bytes) -> None:
        """Trust exactly these CAs in the handshakes of new connections (rotation, removal)."""
        bundle = client_cas.strip()
        if not bundle or bundle == self._trusted:
            return
        try:
            context = _context_of(*self._pair, bundle)
        except (ssl.SSLError, ValueError) as error:
            logger.warning("client CA bundle not loaded into the TLS context: %s", error)
            return
        self._trusted, self.context = bundle, context
        logger.info("client CA bundles updated for new TLS connections")
