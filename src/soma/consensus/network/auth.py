"""Mutual authentication between the validators of one committee: a signed handshake.

Every call a validator makes to a peer carries, in its metadata, a handshake naming the
epoch, the caller's and the callee's authority indices, the time and a fresh nonce,
signed with the caller's network key (intent scope NETWORK_HANDSHAKE). The server accepts
the call only if the signature verifies under the committee's network key for that index,
the handshake is addressed to it, in its epoch, recent, and not seen before. So only
committee members can push, fetch or subscribe, and a captured handshake cannot be
replayed. Blocks themselves are still verified one by one: authentication says who is
calling, not that what it sends is true.

The answer to a call is authenticated by the reverse direction: a validator only dials the
address the committee lists for a peer, and every block or commit it receives is checked
against the committee's protocol keys before it is believed.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from soma.types.bcs import BcsStruct, u32, u64
from soma.types.committee import Committee
from soma.types.crypto import Ed25519Signature, NetworkKeyPair
from soma.types.error import SomaError
from soma.types.intent import Intent, IntentScope, intent_message_digest

NONCE_LENGTH = 16
#: How far a handshake's clock may be from ours (either way).
MAX_CLOCK_SKEW_MS = 60_000
#: Nonces remembered to refuse replays (older ones fall outside the skew window).
MAX_REMEMBERED_NONCES = 200_000


class PeerAuthError(SomaError):
    """A call whose caller could not be authenticated as a committee member."""

    code = "PEER_AUTH"


class PeerHandshake(BcsStruct):
    epoch: u64
    sender: u32
    receiver: u32
    timestamp_ms: u64
    nonce: bytes

    INTENT = Intent.consensus(IntentScope.NETWORK_HANDSHAKE)

    def signing_digest(self) -> bytes:
        return intent_message_digest(self.INTENT, self.to_bytes())


class SignedPeerHandshake(BcsStruct):
    handshake: PeerHandshake
    signature: Ed25519Signature


class PeerAuthenticator:
    """Signs our handshakes and checks those of callers, for one committee."""

    def __init__(self, committee: Committee, own_index: int, key: NetworkKeyPair) -> None:
        self._committee = committee
        self._own = own_index
        self._key = key
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def handshake_for(self, receiver: int, now_ms: int) -> bytes:
        handshake = PeerHandshake(
            epoch=self._committee.epoch,
            sender=self._own,
            receiver=receiver,
            timestamp_ms=now_ms,
            nonce=os.urandom(NONCE_LENGTH),
        )
        return SignedPeerHandshake(handshake, self._key.sign(handshake.signing_digest())).to_bytes()

    def committee_certificates(self) -> list[bytes]:
        """The TLS certificates of the committee: the only ones a caller may present."""
        return [m.tls_certificate for m in self._committee.members]

    def check_link(self, sender: int, certificate: bytes | None) -> None:
        """Refuse a handshake of `sender` that came over a TLS link opened with another
        member's certificate (`certificate` is None only on plain-text test links)."""
        if (
            certificate is not None
            and certificate != self._committee.members[sender].tls_certificate
        ):
            raise PeerAuthError(f"handshake of {sender} over a link with another's certificate")

    def authenticate(self, data: bytes | None, now_ms: int) -> int:
        """The authority index of the caller, or `PeerAuthError`."""
        if not data:
            raise PeerAuthError("no handshake: only committee members may call")
        try:
            signed = SignedPeerHandshake.from_bytes(data)
        except SomaError as e:
            raise PeerAuthError(f"malformed handshake: {e}") from e
        hs = signed.handshake
        committee = self._committee
        if hs.epoch != committee.epoch:
            raise PeerAuthError(f"handshake for epoch {hs.epoch}, this is {committee.epoch}")
        if hs.receiver != self._own:
            raise PeerAuthError(f"handshake addressed to {hs.receiver}, this is {self._own}")
        if not 0 <= hs.sender < committee.size or hs.sender == self._own:
            raise PeerAuthError(f"caller index {hs.sender} is not a peer in this committee")
        if abs(hs.timestamp_ms - now_ms) > MAX_CLOCK_SKEW_MS:
            raise PeerAuthError(f"handshake time {hs.timestamp_ms} too far from {now_ms}")
        if len(hs.nonce) != NONCE_LENGTH:
            raise PeerAuthError("handshake nonce has the wrong length")
        key = committee.members[hs.sender].network_key
        try:
            key.verify(hs.signing_digest(), bytes(signed.signature))
        except SomaError as e:
            raise PeerAuthError(f"handshake signature of {hs.sender} does not verify") from e
        self._remember(hs.sender.to_bytes(4, "big") + hs.nonce, now_ms)
        return hs.sender

    def _remember(self, nonce: bytes, now_ms: int) -> None:
        seen = self._seen
        if nonce in seen:
            raise PeerAuthError("handshake replayed")
        seen[nonce] = now_ms
        horizon = now_ms - 2 * MAX_CLOCK_SKEW_MS
        while seen and (len(seen) > MAX_REMEMBERED_NONCES or next(iter(seen.values())) < horizon):
            seen.popitem(last=False)
