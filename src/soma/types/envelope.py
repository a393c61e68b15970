"""Envelopes: a message together with the authority signatures vouching for it.

The same data travels in three states, as in Sui: with no authority signature
(`UnsignedEnvelope`), signed by one authority (`SignedEnvelope`, e.g. one validator's
effects), or certified by a quorum (`CertifiedEnvelope`, e.g. an effects certificate).
The data type says what it is signed as through its `INTENT`, so an envelope can only
verify under the scope its data belongs to.
"""

from __future__ import annotations

from typing import ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

from soma.types.bcs import BcsStruct
from soma.types.committee import Committee
from soma.types.crypto import AuthorityKeyPair
from soma.types.error import InvalidQuorumSignatureError, WrongEpochError
from soma.types.intent import Intent
from soma.types.signature_info import (
    AuthorityQuorumSignInfo,
    AuthoritySignInfo,
    Ed25519QuorumSignInfo,
    EmptySignInfo,
)


class SignableMessage(Protocol):
    """Data that authorities sign: it knows its intent and its canonical bytes."""

    INTENT: ClassVar[Intent]

    def to_bytes(self) -> bytes: ...


@runtime_checkable
class EpochScoped(Protocol):
    """Data that belongs to one epoch (effects: the epoch they were executed in) and
    may only be signed in it."""

    def signing_epoch(self) -> int: ...


def _check_signing_epoch(data: object, signature_epoch: int) -> None:
    # getattr, not isinstance(data, EpochScoped): a runtime protocol check inspects the
    # class on every call, and this runs for every signature a client verifies.
    signing_epoch = getattr(data, "signing_epoch", None)
    if signing_epoch is not None and signing_epoch() != signature_epoch:
        raise WrongEpochError(
            f"{type(data).__name__} of epoch {signing_epoch()} signed in epoch {signature_epoch}"
        )


D = TypeVar("D", bound=SignableMessage)
S = TypeVar("S")


class Envelope(BcsStruct, Generic[D, S]):
    data: D
    auth_signature: S

    @property
    def intent(self) -> Intent:
        return type(self.data).INTENT


class UnsignedEnvelope(Envelope[D, EmptySignInfo], Generic[D]):
    @classmethod
    def wrap(cls, data: D) -> Self:
        return cls(data, EmptySignInfo())


class SignedEnvelope(Envelope[D, AuthoritySignInfo], Generic[D]):
    @classmethod
    def sign(cls, data: D, key: AuthorityKeyPair, epoch: int) -> Self:
        _check_signing_epoch(data, epoch)
        info = AuthoritySignInfo.create(key, epoch, type(data).INTENT, data.to_bytes())
        return cls(data, info)

    def verify(self, committee: Committee) -> None:
        """Raise unless a member of `committee` signed this data in its epoch."""
        _check_signing_epoch(self.data, self.auth_signature.epoch)
        self.auth_signature.verify(committee, self.intent, self.data.to_bytes())


class CertifiedEnvelope(Envelope[D, AuthorityQuorumSignInfo], Generic[D]):
    @classmethod
    def from_signed(cls, committee: Committee, signed: list[SignedEnvelope[D]]) -> Self:
        """Combine signed copies of one message into a certificate. The caller verified
        each signature; all must carry the same data."""
        if not signed:
            raise InvalidQuorumSignatureError("no signatures to certify")
        data = signed[0].data
        if any(s.data.to_bytes() != data.to_bytes() for s in signed[1:]):
            raise InvalidQuorumSignatureError("signed envelopes carry different data")
        quorum = Ed25519QuorumSignInfo.from_signatures(
            committee, [s.auth_signature for s in signed]
        )
        return cls(data, quorum)

    def verify(self, committee: Committee) -> None:
        """Raise unless a quorum of `committee` signed this data."""
        _check_signing_epoch(self.data, self.auth_signature.epoch)
        self.auth_signature.verify(committee, self.intent, self.data.to_bytes())
