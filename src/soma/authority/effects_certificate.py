"""Effects certificates: 2f+1 stake of validators signing the same effects.

Each validator signs the effects it computed; honest validators compute identical bytes,
so their signatures combine. A signature that does not verify is refused; signatures
over different effects are kept apart (a validator that computed something else is
evidence of a bug or a Byzantine validator, and never helps a certificate form).
"""

from __future__ import annotations

from soma.types.committee import Committee, StakeAggregator
from soma.types.digests import TransactionDigest, TransactionEffectsDigest
from soma.types.effects import (
    CertifiedTransactionEffects,
    SignedTransactionEffects,
    TransactionEffects,
)
from soma.types.error import InvalidValueError
from soma.types.signature_info import AuthoritySignInfo, Ed25519QuorumSignInfo


class EffectsCertifier:
    """Collects signed effects for one transaction until a quorum agrees."""

    def __init__(self, committee: Committee) -> None:
        self.committee = committee
        self._groups: dict[TransactionEffectsDigest, StakeAggregator[SignedTransactionEffects]] = {}
        self.certificate: CertifiedTransactionEffects | None = None

    def add(self, signed: SignedTransactionEffects) -> CertifiedTransactionEffects | None:
        """Add one validator's signed effects (verified here); the certificate once a
        quorum signed the same effects."""
        signed.verify(self.committee)
        digest = signed.data.digest()
        group = self._groups.get(digest)
        if group is None:
            group = self._groups[digest] = StakeAggregator(self.committee)
        if group.add(signed.auth_signature.authority, signed) and self.certificate is None:
            self.certificate = CertifiedTransactionEffects.from_signed(
                self.committee, list(group.values.values())
            )
        return self.certificate

    def disagreeing_stake(self) -> int:
        """Stake that signed effects other than the most signed ones."""
        totals = sorted((g.total_stake for g in self._groups.values()), reverse=True)
        return sum(totals[1:])


class RawEffectsCertifier:
    """`EffectsCertifier` for effects as BCS bytes with their signatures, the form
    the validator service streams them in.

    Each signature is verified over the bytes as received, copies are grouped by their
    bytes, and only the copy that reaches a quorum is decoded (and checked to be the
    effects of the expected transaction, in the signatures' epoch): one decode per
    transaction instead of one per validator."""

    def __init__(self, committee: Committee, transaction: TransactionDigest) -> None:
        self.committee = committee
        self.transaction = transaction
        self._groups: dict[bytes, StakeAggregator[AuthoritySignInfo]] = {}
        self.certificate: CertifiedTransactionEffects | None = None

    def add(
        self, effects: bytes, signature: AuthoritySignInfo
    ) -> CertifiedTransactionEffects | None:
        """Raises (a SomaError) if the signature does not verify, or if the effects a
        quorum signed are not the expected transaction's."""
        committee = self.committee
        signature.verify(committee, TransactionEffects.INTENT, effects)
        group = self._groups.get(effects)
        if group is None:
            group = self._groups[effects] = StakeAggregator(committee)
        if group.add(signature.authority, signature) and self.certificate is None:
            data = TransactionEffects.from_bytes(effects)
            if data.transaction_digest != self.transaction:
                raise InvalidValueError(
                    f"a quorum signed effects of {data.transaction_digest}, "
                    f"not of {self.transaction}"
                )
            if data.executed_epoch != committee.epoch:
                raise InvalidValueError(
                    f"effects of epoch {data.executed_epoch} signed in epoch {committee.epoch}"
                )
            quorum = Ed25519QuorumSignInfo.from_signatures(committee, group.values.values())
            self.certificate = CertifiedTransactionEffects(data, quorum)
        return self.certificate
