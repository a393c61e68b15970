"""TLS on every node link: the gRPC credentials for servers and channels.

A node listens with its TLS identity (soma.types.tls). A consensus server also demands
a certificate from each caller and trusts exactly the committee's, so a node whose key
is not in the committee is refused during the TLS handshake, before any byte of
consensus reaches it. Services open to any node (the validator service, P2P) ask for
no client certificate. A dialer trusts exactly one certificate, the one it expects at
the other end: the committee's for a validator, or, for P2P, one fetched from the
address and checked to be bound to the peer id it dialled (`fetch_certificate`). So a
peer with any other key fails the handshake whichever side it is on.

Plain-text links exist only for tests that set `PLAINTEXT_LINKS_ENV` to `1`; nothing
in a node's configuration turns them on.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from soma.types.error import InvalidTlsCertificateError, SomaError
from soma.types.tls import TLS_SERVER_NAME, TlsIdentity, certificate_pem

if TYPE_CHECKING:
    ChannelOptions = Sequence[tuple[str, Any]]

#: Set to `1` in a test's environment to run every link of the nodes it starts in
#: plain text (to show what TLS hides, or to read traffic while debugging).
PLAINTEXT_LINKS_ENV = "SOMA_TEST_PLAINTEXT_LINKS"


class TlsHandshakeError(SomaError):
    """No TLS session could be opened with a peer to learn its certificate."""

    code = "TLS_HANDSHAKE"


def plaintext_links() -> bool:
    return os.environ.get(PLAINTEXT_LINKS_ENV) == "1"


def listen(
    server: grpc.aio.Server,
    address: str,
    identity: TlsIdentity,
    trusted_clients: Sequence[bytes] | None = None,
) -> int:
    """Listen on `host:port` with `identity`; with `trusted_clients` (DER certificates),
    only callers presenting one of them complete the handshake. Returns the port."""
    if plaintext_links():
        port: int = server.add_insecure_port(address)
    else:
        roots = None
        if trusted_clients is not None:
            roots = b"".join(certificate_pem(der) for der in trusted_clients)
        credentials = grpc.ssl_server_credentials(
            [(identity.private_key_pem, identity.certificate_pem)],
            root_certificates=roots,
            require_client_auth=trusted_clients is not None,
        )
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


def dial(
    address: str,
    peer_certificate: bytes,
    options: ChannelOptions,
    identity: TlsIdentity | None = None,
) -> grpc.aio.Channel:
    """A channel to `address` that completes its handshake only with the holder of
    `peer_certificate` (DER), presenting `identity` when the server asks for one."""
    if plaintext_links():
        return grpc.aio.insecure_channel(address, options=list(options))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certificate_pem(peer_certificate),
        private_key=None if identity is None else identity.private_key_pem,
        certificate_chain=None if identity is None else identity.certificate_pem,
    )
    return grpc.aio.secure_channel(
        address,
        credentials,
        options=[*options, ("grpc.ssl_target_name_override", TLS_SERVER_NAME)],
    )


def caller_certificate(context: Any) -> bytes | None:
    """The DER certificate the caller of a gRPC method presented (None on a plain-text
    link or when it presented none)."""
    try:
        pems = context.auth_context().get("x509_pem_cert")
    except (AttributeError, RuntimeError):
        return None
    if not pems:
        return None
    return _pem_to_der(bytes(pems[0]))


@functools.lru_cache(maxsize=1024)
def _pem_to_der(pem: bytes) -> bytes:
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    except ValueError as e:
        raise InvalidTlsCertificateError(f"caller certificate does not parse: {e}") from e


@functools.cache
def _fetch_context() -> ssl.SSLContext:
    """A client context that takes any certificate (checked by the caller), made once:
    it loads no CA store, which would cost more than the handshake itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


async def fetch_certificate(address: str, timeout_s: float) -> bytes:
    """The certificate the TLS server at `host:port` presents, unchecked: the caller
    checks its binding to the peer it expects (soma.types.tls.check_certificate) and
    then pins it, so a server that shows another node's certificate still fails the
    real handshake, lacking that certificate's key."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise TlsHandshakeError(f"{address!r} is not host:port")
    context = _fetch_context()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host.strip("[]"), int(port), ssl=context, server_hostname=TLS_SERVER_NAME
            ),
            timeout_s,
        )
    except (OSError, TimeoutError, ssl.SSLError) as e:
        raise TlsHandshakeError(f"TLS handshake with {address} failed: {e}") from None
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
    finally:
        # Dropped at once: waiting for the server's close_notify would cost a round trip
        # or a timeout for nothing, the certificate being all this connection was for.
        writer.transport.abort()
    if not der:
        raise TlsHandshakeError(f"{address} presented no certificate")
    return bytes(der)
