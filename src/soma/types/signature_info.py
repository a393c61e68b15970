"""Authority signatures: one validator's, and a quorum's.

An authority signs Blake2b-256(Intent || BCS(data) || epoch as u64 LE): the intent keeps
scopes apart, the epoch keeps a signature from an old committee from being replayed in a
new one.

`AuthorityQuorumSignInfo` is the one interface for "2f+1 stake vouches for this". Its
schemes: `Ed25519QuorumSignInfo` (a signer bitmap plus one Ed25519 signature per signer
over the message) and `Ed25519BatchQuorumSignInfo` (each signer signed the Merkle root
of a batch holding the message, and a proof per signer leads from the message to its
root; what clients assemble from streamed effects). It is a BCS enum so an aggregate
scheme (BLS) can be added as a new variant without changing any enclosing format.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Self, TypeVar

from soma.types.base import AuthorityName
from soma.types.bcs import BcsEnum, BcsStruct, u64
from soma.types.committee import Committee
from soma.types.crypto import AuthorityKeyPair, Ed25519PublicKey, Ed25519Signature
from soma.types.digests import blake2b256
from soma.types.error import (
    DuplicateSignerError,
    InsufficientStakeError,
    InvalidQuorumSignatureError,
    InvalidSignatureError,
    InvalidValueError,
    UnknownAuthorityError,
    WrongEpochError,
)
from soma.types.intent import Intent
from soma.types.signature_batch import BATCH_INTENT, MerkleProof, batch_leaf

T = TypeVar("T")


def authority_signing_digest(intent: Intent, data_bcs: bytes, epoch: int) -> bytes:
    return blake2b256(intent.to_bytes() + data_bcs + epoch.to_bytes(8, "little"))


class EmptySignInfo(BcsStruct):
    """No authority signature: a message as a user or a peer sent it."""


class AuthoritySignInfo(BcsStruct):
    """One authority's signature over a message in an epoch."""

    epoch: u64
    authority: AuthorityName
    signature: Ed25519Signature

    @classmethod
    def create(cls, key: AuthorityKeyPair, epoch: int, intent: Intent, data_bcs: bytes) -> Self:
        sig = key.sign(authority_signing_digest(intent, data_bcs, epoch))
        return cls(epoch, key.name, sig)

    def verify(self, committee: Committee, intent: Intent, data_bcs: bytes) -> None:
        if self.epoch != committee.epoch:
            raise WrongEpochError(
                f"signature is for epoch {self.epoch}, committee is epoch {committee.epoch}"
            )
        committee.index_of(self.authority)  # raises UnknownAuthorityError
        digest = authority_signing_digest(intent, data_bcs, self.epoch)
        try:
            Ed25519PublicKey(self.authority).verify(digest, self.signature)
        except InvalidSignatureError:
            raise InvalidSignatureError(
                f"signature of authority {self.authority} is invalid"
            ) from None


class AuthorityQuorumSignInfo(BcsEnum, metaclass=abc.ABCMeta):
    """Proof that a threshold of a committee's stake signed one message."""

    epoch: u64

    @abc.abstractmethod
    def signer_indices(self) -> list[int]:
        """Committee indices of the signers, ascending."""

    @abc.abstractmethod
    def verify(
        self,
        committee: Committee,
        intent: Intent,
        data_bcs: bytes,
        threshold: int | None = None,
    ) -> None:
        """Raise unless the signers are members, carry `threshold` stake (default: the
        quorum) and every signature is valid."""


def _bitmap_indices(bitmap: bytes) -> list[int]:
    return [i * 8 + b for i, byte in enumerate(bitmap) if byte for b in range(8) if byte >> b & 1]


def _signers_in_order(
    committee: Committee, parts: Iterable[tuple[AuthoritySignInfo, T]]
) -> tuple[bytes, list[T]]:
    """The signer bitmap and each signer's part in index order, for assembling already
    verified signatures. Rejects a signer given twice, a non-member and a signature from
    another epoch; does not check the threshold (verify does)."""
    by_index: dict[int, T] = {}
    for info, part in parts:
        if info.epoch != committee.epoch:
            raise WrongEpochError(
                f"signature from epoch {info.epoch} in a certificate for epoch {committee.epoch}"
            )
        index = committee.index_of(info.authority)
        if index in by_index:
            raise DuplicateSignerError(f"authority {info.authority} signed twice")
        by_index[index] = part
    bitmap = bytearray((committee.size + 7) // 8)
    for index in by_index:
        bitmap[index // 8] |= 1 << (index % 8)
    return bytes(bitmap), [by_index[i] for i in sorted(by_index)]


def _checked_signers(
    committee: Committee, epoch: int, signers: bytes, signatures: int, threshold: int | None
) -> list[int]:
    """The signer indices of a quorum signature, after the checks that cost no signature
    verification: epoch, bitmap size, members only, one signature per signer, enough
    stake. They come first so a forged certificate costs the verifier as little as
    possible."""
    if epoch != committee.epoch:
        raise WrongEpochError(
            f"certificate is for epoch {epoch}, committee is epoch {committee.epoch}"
        )
    if len(signers) != (committee.size + 7) // 8:
        raise InvalidQuorumSignatureError(
            f"signer bitmap has {len(signers)} bytes for a committee of {committee.size}"
        )
    indices = _bitmap_indices(signers)
    if indices and indices[-1] >= committee.size:
        raise UnknownAuthorityError(
            f"signer index {indices[-1]} is outside the committee of {committee.size}"
        )
    if len(indices) != signatures:
        raise InvalidQuorumSignatureError(f"{len(indices)} signers but {signatures} signatures")
    needed = committee.quorum_threshold if threshold is None else threshold
    if needed < 1:
        # An empty certificate must never verify, whatever the caller asked for.
        raise InvalidQuorumSignatureError(f"a stake threshold must be positive, got {needed}")
    stake = sum(committee.members[i].stake for i in indices)
    if stake < needed:
        raise InsufficientStakeError(f"signers hold stake {stake}, {needed} is needed")
    return indices


class Ed25519QuorumSignInfo(AuthorityQuorumSignInfo, tag=0):
    """Signer bitmap (bit i of byte i//8, least significant first, is committee member i;
    exactly ceil(n/8) bytes) and the signers' Ed25519 signatures in index order."""

    signers: bytes
    signatures: tuple[Ed25519Signature, ...]

    @classmethod
    def from_signatures(cls, committee: Committee, signatures: Iterable[AuthoritySignInfo]) -> Self:
        """Assemble already-verified signatures. Rejects a signer given twice, a
        non-member and a signature from another epoch; does not check the threshold
        (verify does)."""
        bitmap, ordered = _signers_in_order(committee, ((i, i.signature) for i in signatures))
        return cls(committee.epoch, bitmap, tuple(ordered))

    def signer_indices(self) -> list[int]:
        return _bitmap_indices(self.signers)

    def verify(
        self,
        committee: Committee,
        intent: Intent,
        data_bcs: bytes,
        threshold: int | None = None,
    ) -> None:
        indices = _checked_signers(
            committee, self.epoch, self.signers, len(self.signatures), threshold
        )
        digest = authority_signing_digest(intent, data_bcs, self.epoch)
        for index, signature in zip(indices, self.signatures, strict=True):
            name = committee.members[index].name
            try:
                Ed25519PublicKey(name).verify(digest, signature)
            except InvalidSignatureError:
                raise InvalidSignatureError(
                    f"signature of authority {name} (index {index}) is invalid"
                ) from None


class BatchSignature(BcsStruct):
    """One signer's part of an `Ed25519BatchQuorumSignInfo`: its signature over a batch
    root, and the proof that the message is a leaf under that root."""

    signature: Ed25519Signature
    proof: MerkleProof


class Ed25519BatchQuorumSignInfo(AuthorityQuorumSignInfo, tag=1):
    """A quorum of batch signatures (`soma.types.signature_batch`): each signer signed
    the Merkle root of a batch of messages that holds this one. The signer bitmap is as
    in `Ed25519QuorumSignInfo`; signatures are in index order, each with its proof."""

    signers: bytes
    signatures: tuple[BatchSignature, ...]

    @classmethod
    def from_batch_signatures(
        cls, committee: Committee, signatures: Iterable[tuple[AuthoritySignInfo, MerkleProof]]
    ) -> Self:
        """Assemble already-verified batch signatures (each an authority's signature
        over a root, and the message's proof under it)."""
        bitmap, ordered = _signers_in_order(
            committee, ((info, BatchSignature(info.signature, proof)) for info, proof in signatures)
        )
        return cls(committee.epoch, bitmap, tuple(ordered))

    def signer_indices(self) -> list[int]:
        return _bitmap_indices(self.signers)

    def verify(
        self,
        committee: Committee,
        intent: Intent,
        data_bcs: bytes,
        threshold: int | None = None,
    ) -> None:
        indices = _checked_signers(
            committee, self.epoch, self.signers, len(self.signatures), threshold
        )
        for index, part in zip(indices, self.signatures, strict=True):
            name = committee.members[index].name
            try:
                root = part.proof.root_of(batch_leaf(part.proof.index, intent, data_bcs))
            except InvalidValueError as e:
                raise InvalidQuorumSignatureError(
                    f"batch proof of authority {name} (index {index}): {e.message}"
                ) from None
            digest = authority_signing_digest(BATCH_INTENT, root, self.epoch)
            try:
                Ed25519PublicKey(name).verify(digest, part.signature)
            except InvalidSignatureError:
                raise InvalidSignatureError(
                    f"batch signature of authority {name} (index {index}) is invalid"
                ) from None
