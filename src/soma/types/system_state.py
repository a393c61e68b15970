"""The system state: one shared object at a fixed ID holding the epoch, the validator set
and the protocol parameters. Validator-management transactions mutate it; the committee
of the next epoch is read from it at the epoch boundary.
"""

from __future__ import annotations

from typing import Self

from soma.types.base import AuthorityName, ObjectID, SomaAddress
from soma.types.bcs import BcsStruct, u64
from soma.types.committee import Committee, CommitteeMember
from soma.types.crypto import AuthorityKeyPair, Ed25519PublicKey, Ed25519Signature
from soma.types.digests import TransactionDigest
from soma.types.error import InvalidKeyError, InvalidValueError
from soma.types.intent import Intent, IntentScope, intent_message_digest
from soma.types.object import GENESIS_VERSION, Object, ObjectType, Shared

SYSTEM_STATE_OBJECT_ID = ObjectID.from_int(5)
SYSTEM_STATE_INITIAL_SHARED_VERSION = GENESIS_VERSION


class ValidatorMetadata(BcsStruct):
    """A validator's identity, keys and addresses (host:port), as registered on chain."""

    soma_address: SomaAddress
    authority_key: Ed25519PublicKey
    protocol_key: Ed25519PublicKey
    network_key: Ed25519PublicKey
    #: DER TLS certificate bound to `network_key` (soma.types.tls).
    tls_certificate: bytes
    hostname: str
    network_address: str
    consensus_address: str
    p2p_address: str

    @property
    def authority_name(self) -> AuthorityName:
        return AuthorityName(self.authority_key)

    def _possession_digest(self) -> bytes:
        return intent_message_digest(
            Intent.soma(IntentScope.PROOF_OF_POSSESSION),
            self.soma_address + self.authority_key + self.protocol_key + self.network_key,
        )

    def proof_of_possession(self, key: AuthorityKeyPair) -> Ed25519Signature:
        """The authority key's signature binding it to this validator's account and to
        its protocol and network keys, so nobody can register someone else's authority
        key, nor pair a validator's authority key with keys it did not choose."""
        if key.public_key != self.authority_key:
            raise InvalidKeyError("the key does not match metadata.authority_key")
        return key.sign(self._possession_digest())

    def verify_proof_of_possession(self, proof: Ed25519Signature) -> None:
        """Raise `InvalidSignatureError` unless `proof` was made by `authority_key` for
        `soma_address`, `protocol_key` and `network_key`."""
        self.authority_key.verify(self._possession_digest(), proof)


class Validator(BcsStruct):
    """A validator with the stake that weighs its vote now and the stake it will have
    from the next epoch (stake changes take effect at epoch boundaries)."""

    metadata: ValidatorMetadata
    voting_stake: u64
    next_epoch_stake: u64


class ValidatorSet(BcsStruct):
    active: tuple[Validator, ...]
    pending_active: tuple[Validator, ...]
    pending_removals: tuple[SomaAddress, ...]

    def find_active(self, address: SomaAddress) -> Validator | None:
        return next((v for v in self.active if v.metadata.soma_address == address), None)

    def find(self, address: SomaAddress) -> Validator | None:
        """The active or pending validator whose account is `address`."""
        return next(
            (v for v in (*self.active, *self.pending_active) if v.metadata.soma_address == address),
            None,
        )

    def next_epoch_size(self) -> int:
        """How many validators the committee of the next epoch will have as things stand."""
        return len(self.active) - len(self.pending_removals) + len(self.pending_active)


class SystemParameters(BcsStruct):
    """Protocol parameters, fixed at genesis. `min_validator_stake` is what a validator
    must keep staked while it is not leaving; the validator set of the next epoch is
    kept within `min_validators` and `max_validators` by refusing the joins and leaves
    that would break those bounds."""

    epoch_duration_ms: u64
    transaction_fee: u64
    min_validator_stake: u64
    max_validators: u64
    min_validators: u64


class SystemState(BcsStruct):
    epoch: u64
    protocol_version: u64
    validators: ValidatorSet
    parameters: SystemParameters
    epoch_start_timestamp_ms: u64

    def committee(self) -> Committee:
        """The committee of `epoch`: the active validators weighted by voting stake."""
        return Committee.new(
            self.epoch,
            (
                CommitteeMember(
                    name=v.metadata.authority_name,
                    stake=v.voting_stake,
                    protocol_key=v.metadata.protocol_key,
                    network_key=v.metadata.network_key,
                    tls_certificate=v.metadata.tls_certificate,
                    hostname=v.metadata.hostname,
                    network_address=v.metadata.network_address,
                    consensus_address=v.metadata.consensus_address,
                    p2p_address=v.metadata.p2p_address,
                )
                for v in self.validators.active
            ),
        )

    def to_object(self, version: int, previous_transaction: TransactionDigest) -> Object:
        return Object(
            SYSTEM_STATE_OBJECT_ID,
            ObjectType.SYSTEM_STATE,
            version,
            self.to_bytes(),
            Shared(SYSTEM_STATE_INITIAL_SHARED_VERSION),
            previous_transaction,
        )

    @classmethod
    def from_object(cls, obj: Object) -> Self:
        data = obj.data()
        if obj.id != SYSTEM_STATE_OBJECT_ID or not isinstance(data, cls):
            raise InvalidValueError(f"object {obj.id} is not the system state")
        if not isinstance(obj.owner, Shared):
            raise InvalidValueError("the system state object must be shared")
        return data
