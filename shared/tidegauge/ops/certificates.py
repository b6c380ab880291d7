"""The serving certificate checks of ``doctor``: what the server really presents, against the caBundle.

The aggregator (kube-apiserver, Go's crypto/tls) verifies the serving chain against the APIService's
``caBundle`` and the DNS name ``<service>.<namespace>.svc``; it accepts RSA (2048 bits and more advised;
Go refuses under 1024), ECDSA P-256/P-384/P-521 and Ed25519 keys, and refuses SHA-1 and MD5 signatures.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

WARN_DAYS = 30
_ACCEPTED_CURVES = {"secp256r1", "secp384r1", "secp521r1"}
_REFUSED_HASHES = {"sha1", "md5"}


class BundleError(ValueError):
    """The caBundle does not decode to PEM CA certificates; the message says where it breaks."""


def decode_bundle(encoded: str) -> tuple[bytes, list[x509.Certificate]]:
    """``spec.caBundle`` (base64 of PEM, one line) as PEM bytes and its certificates."""
    if any(character.isspace() for character in encoded):
        raise BundleError("the base64 is not on one line (it has spaces or line breaks)")
    try:
        pem = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BundleError(f"it is not valid base64 ({error})") from error
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise BundleError(f"it decodes, but not to PEM certificates ({error})") from error
    return pem, certificates


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@dataclass(frozen=True)
class Presented:
    """The leaf the server presented, and whether its chain verified against the bundle (and why not)."""

    leaf: x509.Certificate
    chain_error: str
    """"" when the chain verified against the caBundle."""


def probe(connect: Callable[[], socket.socket], server_name: str, bundle_pem: bytes | None) -> Presented:
    """Two TLS handshakes over ``connect()``: one to read the leaf, one verifying it against the bundle.

    The name is not checked here (the SAN check reports it on its own), only the chain.
    """
    reader = _context()
    reader.check_hostname = False
    reader.verify_mode = ssl.CERT_NONE
    with _handshake(connect, reader, server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server presented no certificate")
    leaf = x509.load_der_x509_certificate(der)
    if bundle_pem is None:
        return Presented(leaf, "no caBundle to verify against")
    verifier = _context()
    verifier.check_hostname = False
    verifier.verify_mode = ssl.CERT_REQUIRED
    try:
        verifier.load_verify_locations(cadata=bundle_pem.decode("ascii", "replace"))
    except ssl.SSLError as error:
        return Presented(leaf, f"the caBundle cannot be loaded ({error.reason or error})")
    try:
        with _handshake(connect, verifier, server_name):
            pass
    except ssl.SSLCertVerificationError as error:
        return Presented(leaf, str(error.verify_message or error))
    return Presented(leaf, "")


@contextlib.contextmanager
def _handshake(
    connect: Callable[[], socket.socket], context: ssl.SSLContext, server_name: str
) -> Iterator[ssl.SSLSocket]:
    """TLS over a fresh ``connect()``; closed after. (A port-forward's socket is a wrapper, not a context
    manager: it is closed by hand.)"""
    raw = connect()
    try:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            yield tls
            _close_notify(tls)
    finally:
        raw.close()


def _close_notify(tls: ssl.SSLSocket) -> None:
    """End TLS politely: reads what the server sent after the handshake (TLS 1.3 session tickets), so
    closing does not reset the connection (a port-forward's proxy thread dies on a reset)."""
    try:
        tls.settimeout(2.0)
        tls.unwrap()
    except (ssl.SSLError, OSError):
        pass


def _context() -> ssl.SSLContext:
    """A client context whose key-size rules are Go's, not OpenSSL's: the key check judges keys itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def dns_names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value.get_values_for_type(x509.DNSName))


def days_left(certificate: x509.Certificate, now: datetime.datetime) -> float:
    return (certificate.not_valid_after_utc - now).total_seconds() / 86400


def key_problem(certificate: x509.Certificate) -> tuple[str, str]:
    """("", description) when the aggregator accepts the key and signature, else (severity, what)."""
    key = certificate.public_key()
    algorithm = certificate.signature_hash_algorithm
    signature = algorithm.name if algorithm is not None else "none"
    if isinstance(key, rsa.RSAPublicKey):
        kind = f"RSA {key.key_size} bits"
        if key.key_size < 1024:
            return "FAIL", f"{kind}: Go's TLS refuses RSA keys under 1024 bits"
        if key.key_size < 2048:
            return "WARN", f"{kind}: under 2048 bits is weak"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind = f"ECDSA {key.curve.name}"
        if key.curve.name not in _ACCEPTED_CURVES:
            return "FAIL", f"{kind}: Go's TLS only accepts P-256, P-384 and P-521"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind = "Ed25519"
    else:
        return "FAIL", f"{type(key).__name__}: not a key type Go's TLS serves with"
    if signature in _REFUSED_HASHES:
        return "FAIL", f"{kind}, signed with {signature}: Go refuses {signature.upper()} signatures"
    return "", f"{kind}, signed with {signature}"
