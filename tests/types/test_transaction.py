"""Transactions: signing and verification, well-formedness, inputs, digests."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types.crypto import Ed25519Signature, NetworkKeyPair, UserSignature
from soma.types.digests import CommitDigest, TransactionDigest
from soma.types.error import (
    InvalidKeyError,
    InvalidSignatureError,
    SignerMismatchError,
    TransactionError,
)
from soma.types.intent import Intent, IntentScope
from soma.types.object import Immutable, Object, ObjectRef
from soma.types.system_state import (
    SYSTEM_STATE_INITIAL_SHARED_VERSION,
    SYSTEM_STATE_OBJECT_ID,
    ValidatorMetadata,
)
from soma.types.tls import tls_identity
from soma.types.transaction import (
    MAX_INPUT_OBJECTS,
    MAX_RECIPIENTS,
    AddStake,
    AddValidator,
    ChangeEpoch,
    ConsensusCommitPrologue,
    GenesisTransaction,
    ImmOrOwnedInput,
    MergeCoins,
    PayCoins,
    RemoveValidator,
    SharedInput,
    SignedTransaction,
    SplitCoin,
    TransactionData,
    TransactionKind,
    TransferCoin,
    TransferObjects,
    WithdrawStake,
)
from tests.types.conftest import account_key, address, authority_key, object_ref, seed

SENDER = account_key(0)
GAS = object_ref(1)
SYSTEM_INPUT = SharedInput(SYSTEM_STATE_OBJECT_ID, SYSTEM_STATE_INITIAL_SHARED_VERSION, True)


NETWORK_KEY = NetworkKeyPair(seed("tx-network", 0))
STAKE_COIN = object_ref(4)


def add_validator(meta: ValidatorMetadata | None = None, stake: int = 1_000) -> AddValidator:
    """SENDER registering authority key 0, with a valid proof of possession, staking
    from STAKE_COIN."""
    meta = metadata() if meta is None else meta
    return AddValidator(meta, meta.proof_of_possession(authority_key(0)), STAKE_COIN, stake)


def metadata() -> ValidatorMetadata:
    return ValidatorMetadata(
        soma_address=SENDER.address,
        authority_key=authority_key(0).public_key,
        protocol_key=authority_key(1).public_key,
        network_key=NETWORK_KEY.public_key,
        tls_certificate=tls_identity(NETWORK_KEY).certificate_der,
        hostname="v0",
        network_address="127.0.0.1:1",
        consensus_address="127.0.0.1:2",
        p2p_address="127.0.0.1:3",
    )


def transfer(amount: int | None = 10, coin: ObjectRef | None = None) -> TransferCoin:
    return TransferCoin(
        coin=object_ref(2) if coin is None else coin, amount=amount, recipient=address(1)
    )


def make_tx(kind: TransactionKind | None = None, **changes: Any) -> TransactionData:
    fields: dict[str, Any] = {
        "kind": transfer() if kind is None else kind,
        "sender": SENDER.address,
        "gas_payment": GAS,
        "gas_budget": 1000,
        "expiration": None,
    }
    fields.update(changes)
    return TransactionData(**fields)


def system_kinds() -> list[TransactionKind]:
    return [
        GenesisTransaction(objects=()),
        ConsensusCommitPrologue(
            epoch=0,
            round=1,
            commit_index=1,
            commit_timestamp_ms=1,
            consensus_commit_digest=CommitDigest.zero(),
        ),
        ChangeEpoch(epoch=1, protocol_version=1, epoch_start_timestamp_ms=1000),
    ]


def user_kinds() -> list[TransactionKind]:
    r2, r3 = object_ref(2), object_ref(3)
    return [
        add_validator(),
        RemoveValidator(),
        AddStake(r2, 7),
        WithdrawStake(7),
        transfer(),
        transfer(amount=None),
        PayCoins((r2, r3), (1, 2), (address(1), address(2))),
        PayCoins((r2,), None, (address(1),)),
        MergeCoins((r2, r3)),
        SplitCoin(r2, (1, 2, 3)),
        TransferObjects((r2, r3), address(1)),
    ]


# --- signing and verification -------------------------------------------------------------


@pytest.mark.parametrize("kind", user_kinds(), ids=lambda k: type(k).__name__)
def test_sign_and_verify_every_user_kind(kind: TransactionKind) -> None:
    data = make_tx(kind)
    data.check_well_formed()
    signed = SignedTransaction.sign(data, SENDER)
    assert len(signed.tx_signatures) == 1
    assert signed.tx_signatures[0].signer() == SENDER.address
    assert signed.digest() == data.digest()
    signed.verify()


def test_signature_is_over_the_transaction_intent() -> None:
    data = make_tx()
    signed = SignedTransaction.sign(data, SENDER)
    assert (
        signed.tx_signatures[0].verify(Intent.soma(IntentScope.TRANSACTION_DATA), data.to_bytes())
        == SENDER.address
    )
    effects_sig = UserSignature.create(
        SENDER, Intent.soma(IntentScope.TRANSACTION_EFFECTS), data.to_bytes()
    )
    with pytest.raises(InvalidSignatureError):
        SignedTransaction(data, (effects_sig,)).verify()


def test_signed_by_another_key_is_a_signer_mismatch() -> None:
    signed = SignedTransaction.sign(make_tx(), account_key(1))
    with pytest.raises(SignerMismatchError) as err:
        signed.verify()
    assert isinstance(err.value, TransactionError)


@pytest.mark.parametrize(
    "changes",
    [
        {"gas_budget": 1001},
        {"expiration": 5},
        {"gas_payment": object_ref(9)},
        {"kind": transfer(amount=11)},
        {"sender": account_key(1).address},
    ],
    ids=lambda c: next(iter(c)),
)
def test_tampering_after_signing_is_rejected(changes: dict[str, Any]) -> None:
    data = make_tx()
    signed = SignedTransaction.sign(data, SENDER)
    tampered = dataclasses.replace(signed, data=dataclasses.replace(data, **changes))
    with pytest.raises(InvalidSignatureError):
        tampered.verify()


def test_tampered_signature_bytes_are_rejected() -> None:
    signed = SignedTransaction.sign(make_tx(), SENDER)
    raw = bytearray(signed.tx_signatures[0])
    raw[10] ^= 0x01
    with pytest.raises(InvalidSignatureError):
        SignedTransaction(signed.data, (UserSignature(bytes(raw)),)).verify()


def test_zero_or_two_signatures_are_rejected() -> None:
    data = make_tx()
    sig = SignedTransaction.sign(data, SENDER).tx_signatures[0]
    with pytest.raises(TransactionError):
        SignedTransaction(data, ()).verify()
    with pytest.raises(TransactionError):
        SignedTransaction(data, (sig, sig)).verify()
    other = SignedTransaction.sign(data, account_key(1)).tx_signatures[0]
    with pytest.raises(TransactionError):
        SignedTransaction(data, (sig, other)).verify()


@pytest.mark.parametrize("kind", system_kinds(), ids=lambda k: type(k).__name__)
def test_system_transactions_are_rejected_by_verify(kind: TransactionKind) -> None:
    assert kind.is_system()
    data = make_tx(kind, gas_payment=None, gas_budget=0)
    data.check_well_formed()  # well formed as a system transaction ...
    with pytest.raises(TransactionError, match="system"):
        SignedTransaction.sign(data, SENDER).verify()  # ... but never from a user


@pytest.mark.parametrize("kind", system_kinds(), ids=lambda k: type(k).__name__)
def test_system_transactions_carry_no_gas(kind: TransactionKind) -> None:
    with pytest.raises(TransactionError, match="no gas"):
        make_tx(kind).check_well_formed()


def test_verify_checks_well_formedness() -> None:
    signed = SignedTransaction.sign(make_tx(gas_budget=0), SENDER)
    with pytest.raises(TransactionError, match="gas_budget"):
        signed.verify()


def test_signed_transaction_round_trip_still_verifies() -> None:
    signed = SignedTransaction.sign(make_tx(expiration=9), SENDER)
    back = SignedTransaction.from_bytes(signed.to_bytes())
    assert back == signed
    assert back.digest() == signed.digest()
    back.verify()


# --- check_well_formed --------------------------------------------------------------------


def _many(n: int) -> tuple[ObjectRef, ...]:
    return tuple(object_ref(100 + i) for i in range(n))


def _recipients(n: int) -> tuple[Any, ...]:
    return tuple(address(i) for i in range(n))


def _proof_for_other(field: str, value: Any) -> AddValidator:
    """A proof signed over metadata differing in `field`, sent with the true metadata."""
    changes: dict[str, Any] = {field: value}
    other = dataclasses.replace(metadata(), **changes)
    return AddValidator(metadata(), other.proof_of_possession(authority_key(0)), STAKE_COIN, 1)


MALFORMED: dict[str, tuple[TransactionData, str]] = {
    "missing gas": (make_tx(gas_payment=None), "gas_payment"),
    "zero budget": (make_tx(gas_budget=0), "gas_budget"),
    "duplicate transfer objects": (
        make_tx(TransferObjects((object_ref(2), object_ref(2)), address(1))),
        "twice",
    ),
    "duplicate coins in pay": (
        make_tx(PayCoins((object_ref(2), object_ref(3), object_ref(2)), None, (address(1),))),
        "twice",
    ),
    "duplicate coins in merge": (make_tx(MergeCoins((object_ref(2), object_ref(2)))), "twice"),
    "same object at two versions in owned inputs": (
        make_tx(MergeCoins((object_ref(2, 1), object_ref(2, 2)))),
        "twice",
    ),
    "same object at two versions as coin and gas": (
        make_tx(transfer(coin=object_ref(1, version=2))),
        "two different versions",
    ),
    "empty pay coins": (make_tx(PayCoins((), None, (address(1),))), "coins must not be empty"),
    "empty merge coins": (make_tx(MergeCoins(())), "coins must not be empty"),
    "merge with one coin": (make_tx(MergeCoins((object_ref(2),))), "at least two"),
    "pay amounts and recipients differ": (
        make_tx(PayCoins((object_ref(2),), (1, 2), (address(1),))),
        "differ in length",
    ),
    "pay more recipients than amounts": (
        make_tx(PayCoins((object_ref(2),), (1,), _recipients(2))),
        "differ in length",
    ),
    "pay without amounts to two recipients": (
        make_tx(PayCoins((object_ref(2),), None, _recipients(2))),
        "exactly one recipient",
    ),
    "pay to nobody": (make_tx(PayCoins((object_ref(2),), (), ())), "recipients"),
    "pay to too many recipients": (
        make_tx(
            PayCoins(
                (object_ref(2),),
                (1,) * (MAX_RECIPIENTS + 1),
                _recipients(MAX_RECIPIENTS + 1),
            )
        ),
        "recipients",
    ),
    "zero transfer amount": (make_tx(transfer(amount=0)), "amount must be positive"),
    "zero stake amount": (make_tx(AddStake(object_ref(2), 0)), "amount must be positive"),
    "zero withdrawal": (make_tx(WithdrawStake(0)), "amount must be positive"),
    "add validator staking nothing": (make_tx(add_validator(stake=0)), "stake must be positive"),
    "zero pay amount": (
        make_tx(PayCoins((object_ref(2),), (5, 0), _recipients(2))),
        "every amount must be positive",
    ),
    "zero split amount": (
        make_tx(SplitCoin(object_ref(2), (3, 0))),
        "every amount must be positive",
    ),
    "add validator from another sender": (
        make_tx(add_validator(), sender=account_key(1).address),
        "metadata.soma_address",
    ),
    "add validator without a valid proof": (
        make_tx(AddValidator(metadata(), Ed25519Signature(bytes(64)), STAKE_COIN, 1_000)),
        "proof_of_possession",
    ),
    **{
        f"add validator with a proof for another {field}": (
            make_tx(_proof_for_other(field, value)),
            "proof_of_possession",
        )
        for field, value in [
            ("soma_address", address(9)),
            ("protocol_key", authority_key(7).public_key),
            ("network_key", authority_key(8).public_key),
        ]
    },
    "add validator with a certificate of another network key": (
        make_tx(
            add_validator(
                dataclasses.replace(
                    metadata(),
                    tls_certificate=tls_identity(
                        NetworkKeyPair(seed("tx-network", 1))
                    ).certificate_der,
                )
            )
        ),
        "tls_certificate is not bound to metadata.network_key",
    ),
    "add validator with a certificate that does not parse": (
        make_tx(add_validator(dataclasses.replace(metadata(), tls_certificate=b"\x30\x82"))),
        "tls_certificate is not bound to metadata.network_key",
    ),
    "transfer no objects": (make_tx(TransferObjects((), address(1))), "objects must not"),
    "split into nothing": (make_tx(SplitCoin(object_ref(2), ())), "amounts must not"),
    "split into too many": (
        make_tx(SplitCoin(object_ref(2), (1,) * (MAX_RECIPIENTS + 1))),
        "amounts",
    ),
    "too many input objects": (
        make_tx(TransferObjects(_many(MAX_INPUT_OBJECTS + 1), address(1))),
        "input objects",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_check_well_formed_rejects(case: str) -> None:
    data, message = MALFORMED[case]
    with pytest.raises(TransactionError, match=message):
        data.check_well_formed()
    # And a signed copy never verifies.
    with pytest.raises(TransactionError):
        SignedTransaction.sign(data, SENDER).verify()


def test_limits_themselves_are_accepted() -> None:
    make_tx(TransferObjects(_many(MAX_INPUT_OBJECTS), address(1))).check_well_formed()
    make_tx(
        PayCoins((object_ref(2),), (1,) * MAX_RECIPIENTS, _recipients(MAX_RECIPIENTS))
    ).check_well_formed()
    make_tx(SplitCoin(object_ref(2), (1,) * MAX_RECIPIENTS)).check_well_formed()


# --- input objects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "owned"),
    [
        (add_validator(), [STAKE_COIN]),
        (RemoveValidator(), []),
        (AddStake(object_ref(2), 5), [object_ref(2)]),
        (WithdrawStake(5), []),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, TransactionKind) else "",
)
def test_system_state_is_a_mutable_shared_input(
    kind: TransactionKind, owned: list[ObjectRef]
) -> None:
    assert kind.uses_system_state()
    inputs = make_tx(kind).input_objects()
    assert inputs == (SYSTEM_INPUT, *(ImmOrOwnedInput(r) for r in owned), ImmOrOwnedInput(GAS))
    shared = inputs[0]
    assert isinstance(shared, SharedInput)
    assert shared.mutable is True
    assert shared.object_id == SYSTEM_STATE_OBJECT_ID


def test_change_epoch_uses_system_state_without_gas() -> None:
    kind = ChangeEpoch(epoch=1, protocol_version=1, epoch_start_timestamp_ms=0)
    assert make_tx(kind, gas_payment=None, gas_budget=0).input_objects() == (SYSTEM_INPUT,)


@pytest.mark.parametrize(
    "kind",
    [
        transfer(),
        PayCoins((object_ref(2),), None, (address(1),)),
        MergeCoins((object_ref(2), object_ref(3))),
        SplitCoin(object_ref(2), (1,)),
        TransferObjects((object_ref(2),), address(1)),
    ],
    ids=lambda k: type(k).__name__,
)
def test_transfers_do_not_touch_the_system_state(kind: TransactionKind) -> None:
    assert not kind.uses_system_state()
    inputs = make_tx(kind).input_objects()
    assert all(isinstance(i, ImmOrOwnedInput) for i in inputs)
    assert [i.object_ref for i in inputs] == [*kind.owned_inputs(), GAS]


def test_other_system_kinds_have_no_system_state_input() -> None:
    genesis = make_tx(GenesisTransaction(objects=()), gas_payment=None)
    assert genesis.input_objects() == ()
    prologue = make_tx(system_kinds()[1], gas_payment=None)
    assert prologue.input_objects() == ()


def test_gas_also_transferred_is_listed_once() -> None:
    data = make_tx(transfer(amount=None, coin=GAS))
    assert data.input_objects() == (ImmOrOwnedInput(GAS),)
    data.check_well_formed()
    SignedTransaction.sign(data, SENDER).verify()
    pay = make_tx(PayCoins((object_ref(2), GAS), (5,), (address(1),)))
    assert pay.input_objects() == (ImmOrOwnedInput(object_ref(2)), ImmOrOwnedInput(GAS))


def test_gas_at_another_version_than_the_coin_is_rejected() -> None:
    data = make_tx(transfer(coin=object_ref(1, version=7)))
    with pytest.raises(TransactionError, match="two different versions"):
        data.input_objects()


# --- digests ------------------------------------------------------------------------------


def test_digest_is_tagged_blake2b_of_the_encoding() -> None:
    data = make_tx()
    expected = hashlib.blake2b(b"TransactionData::" + data.to_bytes(), digest_size=32).digest()
    assert data.digest() == expected
    assert isinstance(data.digest(), TransactionDigest)


ALTERNATIVES: dict[str, Any] = {
    "kind": transfer(amount=11),
    "sender": account_key(1).address,
    "gas_payment": object_ref(1, version=2),
    "gas_budget": 1001,
    "expiration": 0,
}


def test_alternatives_cover_every_field() -> None:
    assert set(ALTERNATIVES) == {f.name for f in dataclasses.fields(TransactionData)}


@pytest.mark.parametrize("field", sorted(ALTERNATIVES))
def test_digest_changes_with_every_field(field: str) -> None:
    base = make_tx()
    base.digest()  # cache it first: a replaced copy must not reuse it
    changed = dataclasses.replace(base, **{field: ALTERNATIVES[field]})
    assert changed.to_bytes() != base.to_bytes()
    assert changed.digest() != base.digest()
    assert changed.digest() == make_tx(**{field: ALTERNATIVES[field]}).digest()


def test_digest_distinguishes_none_from_gas() -> None:
    assert make_tx(gas_payment=None).digest() != make_tx().digest()
    assert make_tx(expiration=None).digest() != make_tx(expiration=0).digest()


@settings(max_examples=40, deadline=None)
@given(
    budget=st.integers(0, 2**64 - 1),
    expiration=st.none() | st.integers(0, 2**64 - 1),
    amount=st.none() | st.integers(0, 2**64 - 1),
    kind_index=st.integers(0, len(user_kinds()) - 1),
)
def test_decoded_transaction_has_the_same_digest(
    budget: int, expiration: int | None, amount: int | None, kind_index: int
) -> None:
    kind = transfer(amount=amount) if kind_index == 0 else user_kinds()[kind_index]
    data = make_tx(kind, gas_budget=budget, expiration=expiration)
    back = TransactionData.from_bytes(data.to_bytes())
    assert back == data
    assert back.to_bytes() == data.to_bytes()
    assert back.digest() == data.digest()


def test_genesis_transaction_digest_depends_on_objects() -> None:
    coin = Object.new_coin(
        object_ref(7).object_id, 5, Immutable(), TransactionDigest(seed("tx", 0))
    )
    a = make_tx(GenesisTransaction(objects=()), gas_payment=None)
    b = make_tx(GenesisTransaction(objects=(coin,)), gas_payment=None)
    assert a.digest() != b.digest()
    assert TransactionData.from_bytes(b.to_bytes()).digest() == b.digest()


def test_proof_of_possession_needs_the_registered_key() -> None:
    with pytest.raises(InvalidKeyError):
        metadata().proof_of_possession(authority_key(5))
    meta = metadata()
    proof = meta.proof_of_possession(authority_key(0))
    meta.verify_proof_of_possession(proof)
    # A proof is bound to its intent: the same key's signature over the bare bytes fails.
    keys = meta.soma_address + meta.authority_key + meta.protocol_key + meta.network_key
    bare = authority_key(0).sign(keys)
    with pytest.raises(InvalidSignatureError):
        meta.verify_proof_of_possession(bare)
    # It covers the protocol and network keys: another of either breaks it.
    for field in ("protocol_key", "network_key"):
        changes: dict[str, Any] = {field: authority_key(9).public_key}
        changed = dataclasses.replace(meta, **changes)
        with pytest.raises(InvalidSignatureError):
            changed.verify_proof_of_possession(proof)


def test_input_objects_are_listed_once_and_kept_out_of_equality() -> None:
    data = make_tx(PayCoins((object_ref(2),), None, (address(1),)))
    first = data.input_objects()
    assert data.input_objects() is first
    fresh = TransactionData.from_bytes(data.to_bytes())
    assert fresh == data and hash(fresh) == hash(data)
    assert fresh.input_objects() == first


def test_an_input_at_two_versions_raises_on_every_call() -> None:
    coin = object_ref(2)
    other = dataclasses.replace(coin, version=coin.version + 1)
    data = make_tx(MergeCoins((coin, other)))
    for _ in range(2):
        with pytest.raises(TransactionError, match="two different versions"):
            data.input_objects()
