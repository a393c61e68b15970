"""Effects certificates: 2f+1 stake of validators signing the same effects.

Each validator signs the effects it computed; honest validators compute identical bytes,
so their signatures combine. A signature that does not verify is refused; signatures
over different effects are kept apart (a validator that computed something else is
evidence of a bug or a Byzantine validator, and never helps a certificate form).
"""

from __future__ import annotations

from collections.abc import Callable

from soma.types.committee import Committee, StakeAggregator
from soma.types.digests import TransactionDigest, TransactionEffectsDigest
from soma.types.effects import (
    CertifiedTransactionEffects,
    SignedTransactionEffects,
    TransactionEffects,
)
from soma.types.error import InvalidValueError
from soma.types.signature_batch import MerkleProof
from soma.types.signature_info import AuthoritySignInfo, Ed25519BatchQuorumSignInfo

#: A batch proof, made only if needed (most streamed copies never join a certificate).
BatchProof = Callable[[], MerkleProof]


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


class BatchEffectsCertifier:
    """`EffectsCertifier` for streamed effects: BCS bytes under batch signatures the
    caller has already verified (one per stream message, `soma.rpc.validator_batcher`).

    Copies are grouped by their bytes, and only the copy that reaches a quorum is
    decoded (and checked to be the effects of the expected transaction, in the
    signatures' epoch): one decode per transaction instead of one per validator. The
    certificate is an `Ed25519BatchQuorumSignInfo`: each signer's batch signature with
    the proof that these effects are under its root."""

    def __init__(self, committee: Committee, transaction: TransactionDigest) -> None:
        self.committee = committee
        self.transaction = transaction
        self._groups: dict[bytes, StakeAggregator[tuple[AuthoritySignInfo, BatchProof]]] = {}
        self.certificate: CertifiedTransactionEffects | None = None

    def add(
        self, effects: bytes, signature: AuthoritySignInfo, proof: BatchProof
    ) -> CertifiedTransactionEffects | None:
        """Raises a SomaError if the effects a quorum signed are not the expected
        transaction's."""
        committee = self.committee
        group = self._groups.get(effects)
        if group is None:
            group = self._groups[effects] = StakeAggregator(committee)
        if group.add(signature.authority, (signature, proof)) and self.certificate is None:
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
            quorum = Ed25519BatchQuorumSignInfo.from_batch_signatures(
                committee, ((sig, make()) for sig, make in group.values.values())
            )
            self.certificate = CertifiedTransactionEffects(data, quorum)
        return self.certificate
