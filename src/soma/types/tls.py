"""TLS identities derived from a node's network key.

Node links run over TLS, but the TLS stack gRPC ships (BoringSSL) does not offer Ed25519
certificates, so a node's TLS key is a P-256 key derived from its Ed25519 network key
seed (HKDF-SHA256). Its certificate is self-signed and carries, in a private extension,
the network public key and that key's signature over the certificate's public key: the
binding anyone can check against a committee's network key or a dialled peer id, in
the manner of libp2p's TLS handshake. Every field is a function of the seed (fixed
validity, serial from the key, deterministic ECDSA), so a node rebuilds the very
certificate the committee lists for it from its key file alone.

Peers pin certificates, not names: a link trusts exactly the certificates it expects
(one for a dialled peer, the committee's for callers), so every certificate carries
the same server name, `TLS_SERVER_NAME`, which dialers expect.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from soma.types.crypto import (
    PUBLIC_KEY_LENGTH,
    SIGNATURE_LENGTH,
    Ed25519PublicKey,
    NetworkKeyPair,
)
from soma.types.error import InvalidTlsCertificateError, SomaError

#: The name every node certificate is issued for (pinning, not naming, decides trust).
TLS_SERVER_NAME = "node.soma"
#: The private extension holding `network key || signature over the certificate's SPKI`
#: (an OID under 2.25, the UUID arc, which needs no registration).
BINDING_OID = x509.ObjectIdentifier("2.25.283473869286155623734227532126733934917")
_BINDING_CONTEXT = b"soma-tls-binding-v1:"
_DERIVATION_INFO = b"soma-tls-p256-key-v1"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
#: Larger certificates than this are refused unparsed (ours are about 450 bytes).
MAX_CERTIFICATE_BYTES = 4096


@dataclasses.dataclass(frozen=True)
class TlsIdentity:
    """A node's TLS key and certificate, in the forms gRPC and the committee take."""

    network_key: Ed25519PublicKey
    private_key_pem: bytes
    certificate_der: bytes

    @property
    def certificate_pem(self) -> bytes:
        return certificate_pem(self.certificate_der)


def certificate_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@functools.lru_cache(maxsize=256)
def _identity_of_seed(seed: bytes) -> TlsIdentity:
    network = NetworkKeyPair(seed)
    material = HKDF(hashes.SHA256(), 32, salt=None, info=_DERIVATION_INFO).derive(seed)
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    spki = _spki(key.public_key())
    binding = bytes(network.public_key) + bytes(network.sign(_BINDING_CONTEXT + spki))
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"soma node {network.public_key.hex()[:16]}")]
    )
    serial = int.from_bytes(bytes(network.public_key)[:16], "big") >> 1 or 1
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_SERVER_NAME)]), False)
        .add_extension(x509.UnrecognizedExtension(BINDING_OID, binding), False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return TlsIdentity(
        network_key=network.public_key,
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate_der=certificate.public_bytes(serialization.Encoding.DER),
    )


def tls_identity(key: NetworkKeyPair) -> TlsIdentity:
    """The TLS identity of the node holding `key` (the same every time)."""
    return _identity_of_seed(key.seed_bytes())


@functools.lru_cache(maxsize=1024)
def network_key_of_certificate(der: bytes) -> Ed25519PublicKey:
    """The network key a certificate is bound to, after checking the certificate's own
    signature and the network key's signature over its public key;
    `InvalidTlsCertificateError` otherwise."""
    if len(der) > MAX_CERTIFICATE_BYTES:
        raise InvalidTlsCertificateError(f"certificate of {len(der)} bytes is too large")
    try:
        certificate = x509.load_der_x509_certificate(der)
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise InvalidTlsCertificateError("certificate key is not P-256")
        signature_hash = certificate.signature_hash_algorithm
        if not isinstance(signature_hash, hashes.SHA256):
            raise InvalidTlsCertificateError("certificate is not signed with SHA-256")
        key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            ec.ECDSA(hashes.SHA256()),
        )
        extension = certificate.extensions.get_extension_for_oid(BINDING_OID).value
    except InvalidTlsCertificateError:
        raise
    except x509.ExtensionNotFound:
        raise InvalidTlsCertificateError("certificate has no network key binding") from None
    except InvalidSignature:
        raise InvalidTlsCertificateError("certificate's self-signature is invalid") from None
    except Exception as e:
        # Bytes from a peer, read by a third-party X.509 parser whose failures are many
        # unrelated classes: each one is this typed refusal.
        raise InvalidTlsCertificateError(f"certificate does not parse: {e}") from None
    if not isinstance(extension, x509.UnrecognizedExtension):
        raise InvalidTlsCertificateError("network key binding is malformed")
    binding = extension.value
    if len(binding) != PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH:
        raise InvalidTlsCertificateError(f"network key binding of {len(binding)} bytes")
    try:
        network_key = Ed25519PublicKey(binding[:PUBLIC_KEY_LENGTH])
        network_key.verify(_BINDING_CONTEXT + _spki(key), binding[PUBLIC_KEY_LENGTH:])
    except SomaError:
        raise InvalidTlsCertificateError(
            "certificate is not signed by the network key it names"
        ) from None
    return network_key


def check_certificate(der: bytes, network_key: Ed25519PublicKey) -> None:
    """Raise `InvalidTlsCertificateError` unless `der` is bound to `network_key`."""
    bound = network_key_of_certificate(der)
    if bound != network_key:
        raise InvalidTlsCertificateError(
            f"certificate is bound to {bound.hex()[:16]}, expected {network_key.hex()[:16]}"
        )
