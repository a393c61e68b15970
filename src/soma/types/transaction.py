"""Transactions: what a user (or the system) asks the chain to do.

`TransactionData` is what gets signed and hashed (its digest is the transaction's
identity); `SignedTransaction` adds the sender's signature. System transactions
(genesis, consensus commit prologue, epoch change) are created by validators themselves,
carry no gas and no signature, and are never accepted from users.
"""

from __future__ import annotations

from typing import ClassVar, Self

from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsEnum, CachedBytes, u64
from soma.types.crypto import AccountKeyPair, Ed25519Signature, UserSignature
from soma.types.digests import CommitDigest, Hashed, TransactionDigest
from soma.types.error import (
    InvalidSignatureError,
    InvalidTlsCertificateError,
    SignerMismatchError,
    TransactionError,
)
from soma.types.intent import Intent, IntentScope
from soma.types.object import Object, ObjectRef
from soma.types.system_state import (
    SYSTEM_STATE_INITIAL_SHARED_VERSION,
    SYSTEM_STATE_OBJECT_ID,
    ValidatorMetadata,
)
from soma.types.tls import check_certificate

#: Upper bounds that keep a single transaction cheap to validate and execute.
MAX_INPUT_OBJECTS = 256
MAX_RECIPIENTS = 256
#: Versions above this are refused in any input, so a Lamport version (max input + 1)
#: always fits a u64: a validator could otherwise put a signed transaction naming version
#: 2^64 - 1 in a block and make every honest validator fail to store its outputs.
MAX_OBJECT_VERSION = 2**63 - 1


class TransactionKind(BcsEnum):
    """What the transaction does. Variant tags are wire format: never renumber."""

    def is_system(self) -> bool:
        return isinstance(self, GenesisTransaction | ConsensusCommitPrologue | ChangeEpoch)

    def uses_system_state(self) -> bool:
        return isinstance(
            self, ChangeEpoch | AddValidator | RemoveValidator | AddStake | WithdrawStake
        )

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        """The owned objects this kind consumes (gas excluded)."""
        return ()


class GenesisTransaction(TransactionKind, tag=0):
    objects: tuple[Object, ...]


class ConsensusCommitPrologue(TransactionKind, tag=1):
    """First transaction of every consensus commit: records its index and timestamp."""

    epoch: u64
    round: u64
    commit_index: u64
    commit_timestamp_ms: u64
    consensus_commit_digest: CommitDigest


class ChangeEpoch(TransactionKind, tag=2):
    """Last transaction of an epoch: pays the epoch's fees to its validators, applies the
    validator set's pending joins, leaves and stake changes, and moves the system state
    to `epoch` (the next one), running `protocol_version` from
    `epoch_start_timestamp_ms`. Its only input is the system state."""

    epoch: u64
    protocol_version: u64
    epoch_start_timestamp_ms: u64


class AddValidator(TransactionKind, tag=3):
    """Ask to join the committee from the next epoch, staking `stake` taken from `coin`.
    The sender must be `metadata.soma_address`; `proof_of_possession` (see
    `ValidatorMetadata.proof_of_possession`) proves it holds the authority key, so nobody
    can register someone else's key; the TLS certificate must be bound to the network
    key, or peers could never connect to the validator once it is in the committee."""

    metadata: ValidatorMetadata
    proof_of_possession: Ed25519Signature
    coin: ObjectRef
    stake: u64

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return (self.coin,)


class RemoveValidator(TransactionKind, tag=4):
    """Ask to leave the committee at the end of the epoch; the sender is the validator
    (identified, like everywhere in the system state, by its account address)."""


class AddStake(TransactionKind, tag=5):
    """The sender, a validator's own account, adds `amount` from `coin` to its stake
    from the next epoch. Stake is the validator's own: nobody stakes for another."""

    coin: ObjectRef
    amount: u64

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return (self.coin,)


class WithdrawStake(TransactionKind, tag=6):
    """The sender, a validator's own account, takes `amount` out of its stake from the
    next epoch, paid at once as a new coin (this epoch's voting stake is unchanged: the
    committee of an epoch never changes)."""

    amount: u64


class TransferCoin(TransactionKind, tag=7):
    """Send `amount` from a coin (the whole coin object if None) to `recipient`."""

    coin: ObjectRef
    amount: u64 | None
    recipient: SomaAddress

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return (self.coin,)


class PayCoins(TransactionKind, tag=8):
    """Merge `coins` and pay `amounts[i]` to `recipients[i]` (if `amounts` is None, the
    merged balance goes to the single recipient)."""

    coins: tuple[ObjectRef, ...]
    amounts: tuple[u64, ...] | None
    recipients: tuple[SomaAddress, ...]

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return self.coins


class MergeCoins(TransactionKind, tag=9):
    """Merge every coin into the first one."""

    coins: tuple[ObjectRef, ...]

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return self.coins


class SplitCoin(TransactionKind, tag=10):
    """Split new coins of `amounts` off `coin`, all owned by the sender."""

    coin: ObjectRef
    amounts: tuple[u64, ...]

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return (self.coin,)


class TransferObjects(TransactionKind, tag=11):
    objects: tuple[ObjectRef, ...]
    recipient: SomaAddress

    def owned_inputs(self) -> tuple[ObjectRef, ...]:
        return self.objects


class InputObjectKind(BcsEnum):
    """An input a transaction declares: an owned object at an exact version, or a
    shared object whose version consensus assigns."""


class ImmOrOwnedInput(InputObjectKind, tag=0):
    object_ref: ObjectRef


class SharedInput(InputObjectKind, tag=1):
    object_id: ObjectID
    initial_shared_version: u64
    mutable: bool


#: Where a TransactionData keeps its input objects once listed (outside its fields).
_INPUT_OBJECTS_ATTR = "_input_objects"


class TransactionData(Hashed[TransactionDigest]):
    INTENT: ClassVar[Intent] = Intent.soma(IntentScope.TRANSACTION_DATA)
    DIGEST_TAG = "TransactionData"
    DIGEST_TYPE = TransactionDigest

    kind: TransactionKind
    sender: SomaAddress
    gas_payment: ObjectRef | None
    gas_budget: u64
    expiration: u64 | None

    def input_objects(self) -> tuple[InputObjectKind, ...]:
        """Every declared input, gas included, each object once.

        Kept on the instance after the first call: a validator asks for them at
        validation, ordering, locking and execution (six times per transaction), and the
        value is fixed, since the fields are frozen."""
        cached: tuple[InputObjectKind, ...] | None = self.__dict__.get(_INPUT_OBJECTS_ATTR)
        if cached is None:
            cached = self.__dict__[_INPUT_OBJECTS_ATTR] = tuple(self._list_input_objects())
        return cached

    def _list_input_objects(self) -> list[InputObjectKind]:
        inputs: list[InputObjectKind] = []
        if self.kind.uses_system_state():
            inputs.append(
                SharedInput(SYSTEM_STATE_OBJECT_ID, SYSTEM_STATE_INITIAL_SHARED_VERSION, True)
            )
        seen: dict[ObjectID, ObjectRef] = {}
        refs = list(self.kind.owned_inputs())
        if self.gas_payment is not None:
            refs.append(self.gas_payment)
        for ref in refs:
            known = seen.get(ref.object_id)
            if known is None:
                seen[ref.object_id] = ref
                inputs.append(ImmOrOwnedInput(ref))
            elif known != ref:
                raise TransactionError(f"object {ref.object_id} is given at two different versions")
        return inputs

    def check_well_formed(self) -> None:
        """Checks that need no state: shape, sizes, duplicates. Raises TransactionError."""
        kind = self.kind
        if kind.is_system():
            if self.gas_payment is not None:
                raise TransactionError("a system transaction carries no gas payment")
            return
        if self.gas_payment is None:
            raise TransactionError("gas_payment is required")
        if self.gas_budget == 0:
            raise TransactionError("gas_budget must be positive")
        owned = kind.owned_inputs()
        for ref in (*owned, self.gas_payment):
            if ref.version >= MAX_OBJECT_VERSION:
                raise TransactionError(
                    f"object {ref.object_id}: version {ref.version} is above the maximum"
                )
        if len(owned) > MAX_INPUT_OBJECTS:
            raise TransactionError(f"more than {MAX_INPUT_OBJECTS} input objects")
        if len({r.object_id for r in owned}) != len(owned):
            raise TransactionError("an input object is listed twice")
        if isinstance(kind, PayCoins | MergeCoins) and not kind.coins:
            raise TransactionError("coins must not be empty")
        if isinstance(kind, MergeCoins) and len(kind.coins) < 2:
            raise TransactionError("merge needs at least two coins")
        if isinstance(kind, TransferObjects) and not kind.objects:
            raise TransactionError("objects must not be empty")
        if isinstance(kind, SplitCoin) and not kind.amounts:
            raise TransactionError("amounts must not be empty")
        if isinstance(kind, SplitCoin) and len(kind.amounts) > MAX_RECIPIENTS:
            raise TransactionError(f"more than {MAX_RECIPIENTS} amounts")
        if isinstance(kind, PayCoins):
            if not kind.recipients or len(kind.recipients) > MAX_RECIPIENTS:
                raise TransactionError(f"recipients must number 1 to {MAX_RECIPIENTS}")
            if kind.amounts is None and len(kind.recipients) != 1:
                raise TransactionError("without amounts, exactly one recipient is paid")
            if kind.amounts is not None and len(kind.amounts) != len(kind.recipients):
                raise TransactionError("amounts and recipients differ in length")
        if isinstance(kind, AddValidator):
            _check_add_validator(kind, self.sender)
        if isinstance(kind, TransferCoin | AddStake | WithdrawStake) and kind.amount == 0:
            raise TransactionError("amount must be positive")
        amounts = kind.amounts if isinstance(kind, PayCoins | SplitCoin) else None
        if amounts is not None and any(a == 0 for a in amounts):
            raise TransactionError("every amount must be positive")
        self.input_objects()


def _check_add_validator(kind: AddValidator, sender: SomaAddress) -> None:
    metadata = kind.metadata
    if metadata.soma_address != sender:
        raise TransactionError("an AddValidator sender must be metadata.soma_address")
    try:
        metadata.verify_proof_of_possession(kind.proof_of_possession)
    except InvalidSignatureError:
        raise TransactionError("proof_of_possession does not verify") from None
    try:
        check_certificate(metadata.tls_certificate, metadata.network_key)
    except InvalidTlsCertificateError as e:
        raise TransactionError(
            f"metadata.tls_certificate is not bound to metadata.network_key: {e.message}"
        ) from None
    if kind.stake == 0:
        raise TransactionError("stake must be positive")


class SignedTransaction(CachedBytes):
    """A transaction with its sender's signature (exactly one: no sponsors yet). It keeps
    the bytes it was decoded from (a block's entry): stored, served and hashed into a
    commit's transactions digest without being encoded again."""

    data: TransactionData
    tx_signatures: tuple[UserSignature, ...]

    @classmethod
    def sign(cls, data: TransactionData, key: AccountKeyPair) -> Self:
        return cls(data, (UserSignature.create(key, TransactionData.INTENT, data.to_bytes()),))

    def digest(self) -> TransactionDigest:
        return self.data.digest()

    def verify(self) -> None:
        """Raise unless this is a well-formed user transaction signed by its sender."""
        if self.data.kind.is_system():
            raise TransactionError("system transactions cannot be submitted")
        if len(self.tx_signatures) != 1:
            raise TransactionError(f"expected 1 signature, got {len(self.tx_signatures)}")
        self.data.check_well_formed()
        signer = self.tx_signatures[0].verify(TransactionData.INTENT, self.data.to_bytes())
        if signer != self.data.sender:
            raise SignerMismatchError(f"signed by {signer}, but the sender is {self.data.sender}")
