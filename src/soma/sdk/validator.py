"""What a validator registers on chain to join the committee, built from its keys.

A candidate signs its registration with its own authority key (the proof of
possession), so nobody can register another's keys; the TLS certificate is derived
from the network key (`soma.types.tls`), as every node derives its own, so peers
pinning it reach the node that holds that key. Building it needs the candidate's
secret keys and nothing from the network: it is sans-IO, for any client.
"""

from __future__ import annotations

from dataclasses import dataclass

from soma.sdk.errors import ApiError
from soma.types.base import SomaAddress
from soma.types.crypto import AuthorityKeyPair, Ed25519Signature, NetworkKeyPair, ProtocolKeyPair
from soma.types.system_state import ValidatorMetadata
from soma.types.tls import tls_identity


@dataclass(frozen=True, slots=True)
class Registration:
    """A validator's metadata and the proof that its authority key signed it: what an
    `AddValidator` carries besides the stake."""

    metadata: ValidatorMetadata
    proof_of_possession: Ed25519Signature


def registration(
    account: SomaAddress,
    authority: AuthorityKeyPair,
    protocol: ProtocolKeyPair,
    network: NetworkKeyPair,
    hostname: str,
    network_address: str,
    consensus_address: str,
    p2p_address: str,
) -> Registration:
    """The registration of a validator whose account (the sender of its validator
    transactions, which owns its stake) is `account`, listening on the addresses given
    (`host:port` each: its validator service, consensus and P2P)."""
    if not hostname or any(c.isspace() for c in hostname):
        raise ApiError("INVALID_ARGUMENT", f"hostname {hostname!r}: a name without spaces")
    for name, address in (
        ("network_address", network_address),
        ("consensus_address", consensus_address),
        ("p2p_address", p2p_address),
    ):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ApiError("INVALID_ARGUMENT", f"{name}: expected host:port, got {address!r}")
    metadata = ValidatorMetadata(
        soma_address=account,
        authority_key=authority.public_key,
        protocol_key=protocol.public_key,
        network_key=network.public_key,
        tls_certificate=tls_identity(network).certificate_der,
        hostname=hostname,
        network_address=network_address,
        consensus_address=consensus_address,
        p2p_address=p2p_address,
    )
    return Registration(metadata, metadata.proof_of_possession(authority))
