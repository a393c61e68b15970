"""Effects certificates: 2f+1 stake of validators signing the same effects.

Each validator signs the effects it computed; honest validators compute identical bytes,
so their signatures combine. A signature that does not verify is refused; signatures
over different effects are kept apart (a validator that computed something else is
evidence of a bug or a Byzantine validator, and never helps a certificate form).
"""

from __future__ import annotations

from soma.types.committee import Committee, StakeAggregator
from soma.types.digests import TransactionEffectsDigest
from soma.types.effects import CertifiedTransactionEffects, SignedTransactionEffects


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
