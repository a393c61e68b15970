"""What a node says about itself to the network: its peer id (the network public key),
the addresses its P2P service listens on, and when it said so, signed by that key.

The signature (Ed25519 under `Intent(DISCOVERY_PEERS)`, so it can never be taken for a
handshake or a block) binds the addresses to the key: a relaying peer can pass a node's
info on but cannot change where it points, and the timestamp lets a receiver keep the
newest info of each node and expire what nobody refreshes. Verification needs nothing
but the info itself, because the peer id is the key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from soma.p2p.errors import InvalidP2pRequestError
from soma.types.bcs import BcsStruct, u64
from soma.types.crypto import Ed25519PublicKey, Ed25519Signature, NetworkKeyPair
from soma.types.error import CryptoError
from soma.types.intent import Intent, IntentScope, intent_message_digest

#: Most addresses one node may advertise, and the longest one: bounds what an entry
#: costs to store and relay (a full entry is at most about 2 KiB).
MAX_ADDRESSES = 8
MAX_ADDRESS_LENGTH = 255
INTENT = Intent.soma(IntentScope.DISCOVERY_PEERS)

#: `host:port`: a DNS name or IPv4 address, or an IPv6 address in brackets.
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})", re.ASCII)


class InvalidNodeInfoError(InvalidP2pRequestError):
    code = "INVALID_NODE_INFO"


def check_address(address: str) -> None:
    """Raise `InvalidNodeInfoError` unless `address` is a well formed `host:port`."""
    if len(address) > MAX_ADDRESS_LENGTH:
        raise InvalidNodeInfoError(
            f"address of {len(address)} characters; at most {MAX_ADDRESS_LENGTH}"
        )
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise InvalidNodeInfoError(f"not a host:port address: {address[:64]!r}")


class NodeInfo(BcsStruct):
    peer_id: Ed25519PublicKey
    addresses: tuple[str, ...]
    timestamp_ms: u64

    def signing_digest(self) -> bytes:
        return intent_message_digest(INTENT, self.to_bytes())

    def check_addresses(self) -> None:
        if not 0 < len(self.addresses) <= MAX_ADDRESSES:
            raise InvalidNodeInfoError(
                f"{len(self.addresses)} addresses; 1 to {MAX_ADDRESSES} are allowed"
            )
        for address in self.addresses:
            check_address(address)


class SignedNodeInfo(BcsStruct):
    info: NodeInfo
    signature: Ed25519Signature

    @classmethod
    def sign(
        cls, key: NetworkKeyPair, addresses: Sequence[str], timestamp_ms: int
    ) -> SignedNodeInfo:
        info = NodeInfo(key.public_key, tuple(addresses), timestamp_ms)
        info.check_addresses()
        return cls(info, key.sign(info.signing_digest()))

    @property
    def peer_id(self) -> Ed25519PublicKey:
        return self.info.peer_id

    @property
    def timestamp_ms(self) -> int:
        return self.info.timestamp_ms

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.info.addresses

    def verify(self) -> None:
        """Raise `InvalidNodeInfoError` unless the addresses are well formed and the
        signature verifies with the peer id as the key. Addresses first: they are
        cheaper to check than a signature."""
        self.info.check_addresses()
        try:
            self.info.peer_id.verify(self.info.signing_digest(), self.signature)
        except CryptoError as e:
            raise InvalidNodeInfoError(
                f"node info of {self.info.peer_id.hex()[:16]}: {e.message}"
            ) from None
