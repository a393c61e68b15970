"""Why a validator refuses a transaction on submit: every rejection of
`AuthorityState.validate_transaction` and `validation.check_inputs` is a typed error with
its stable code, and its message names the object or field at fault."""

from __future__ import annotations

import inspect

import pytest

from soma.authority import errors
from soma.authority.errors import (
    EpochEndedError,
    InsufficientBalanceError,
    InsufficientGasError,
    InvalidGasUseError,
    InvalidObjectTypeError,
    InvalidOwnerError,
    ObjectDigestMismatchError,
    ObjectNotFoundError,
    ObjectVersionUnavailableError,
    TransactionExpiredError,
    TransactionRejectedError,
)
from soma.authority.state import AuthorityState
from soma.authority.validation import check_inputs, check_signature_and_expiry
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import UserSignature
from soma.types.digests import CommitDigest, ObjectDigest
from soma.types.error import (
    InvalidSignatureError,
    SignerMismatchError,
    SomaError,
    TransactionError,
)
from soma.types.genesis import SYSTEM_ADDRESS
from soma.types.object import Object, ObjectRef
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID
from soma.types.transaction import (
    AddStake,
    ChangeEpoch,
    ConsensusCommitPrologue,
    MergeCoins,
    PayCoins,
    SignedTransaction,
    SplitCoin,
    TransactionData,
    TransactionKind,
    TransferCoin,
    TransferObjects,
)
from tests.authority.execution.helpers import add_validator, not_a_coin
from tests.authority.helpers import BALANCE, BUDGET, FEE, Chain

NOT_A_COIN_ID = ObjectID.from_int(0xABC)


def _not_a_coin(addresses: list[SomaAddress]) -> list[Object]:
    """An object of account 0 that is not a coin."""
    return [not_a_coin(NOT_A_COIN_ID, addresses[0])]


@pytest.fixture
def chain() -> Chain:
    return Chain(extra_objects=_not_a_coin)


@pytest.fixture
def state(chain: Chain) -> AuthorityState:
    return chain.authority_state()


def rejected(
    state: AuthorityState,
    tx: SignedTransaction,
    error: type[SomaError],
    code: str,
    *mentions: object,
) -> SomaError:
    """Assert `validate_transaction` raises exactly `error` with `code`, and that its
    message mentions each of `mentions`."""
    with pytest.raises(error) as info:
        state.validate_transaction(tx)
    raised = info.value
    assert type(raised) is error, raised
    assert raised.code == code
    assert raised.to_dict() == {"code": code, "message": raised.message}
    for mention in mentions:
        assert str(mention) in raised.message, (mention, raised.message)
    return raised


def missing_ref(n: int = 999) -> ObjectRef:
    return ObjectRef(ObjectID.from_int(n), 1, ObjectDigest(bytes(32)))


def flip_signature(tx: SignedTransaction) -> SignedTransaction:
    sig = bytes(tx.tx_signatures[0])
    bad = sig[:5] + bytes([sig[5] ^ 0x01]) + sig[6:]
    return SignedTransaction(tx.data, (UserSignature(bad),))


# --- accepted --------------------------------------------------------------------------


def test_well_formed_funded_transfer_is_accepted(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    state.validate_transaction(chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    state.validate_transaction(chain.sign(0, TransferCoin(coin, None, chain.addresses[1]), gas))


# --- the inputs ------------------------------------------------------------------------


def test_owned_input_that_does_not_exist(chain: Chain, state: AuthorityState) -> None:
    _, gas, _ = chain.coins(0)
    ghost = missing_ref()
    tx = chain.sign(0, TransferCoin(ghost, 5, chain.addresses[1]), gas)
    rejected(state, tx, ObjectNotFoundError, "OBJECT_NOT_FOUND", ghost.object_id)


def test_gas_coin_that_does_not_exist(chain: Chain, state: AuthorityState) -> None:
    coin, _, _ = chain.coins(0)
    ghost = missing_ref(777)
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), ghost)
    rejected(state, tx, ObjectNotFoundError, "OBJECT_NOT_FOUND", ghost.object_id)


def test_owned_input_at_a_consumed_version(chain: Chain) -> None:
    coin, gas, other_gas = chain.coins(0)
    chain.run(chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    state = chain.authority_state()
    assert chain.obj(coin.object_id).version == 2
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[2]), other_gas)
    error = rejected(
        state,
        tx,
        ObjectVersionUnavailableError,
        "OBJECT_VERSION_UNAVAILABLE",
        coin.object_id,
        "version 2",
        "not 1",
    )
    assert isinstance(error, TransactionRejectedError)


def test_owned_input_at_a_future_version(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    future = ObjectRef(coin.object_id, 7, coin.digest)
    tx = chain.sign(0, TransferCoin(future, 5, chain.addresses[1]), gas)
    rejected(
        state,
        tx,
        ObjectVersionUnavailableError,
        "OBJECT_VERSION_UNAVAILABLE",
        coin.object_id,
        "version 1",
        "not 7",
    )


def test_gas_coin_at_a_consumed_version(chain: Chain) -> None:
    coin, gas, _ = chain.coins(0)
    chain.run(chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    state = chain.authority_state()
    coin_now = chain.ref(coin.object_id)
    tx = chain.sign(0, TransferCoin(coin_now, 5, chain.addresses[1]), gas)
    rejected(state, tx, ObjectVersionUnavailableError, "OBJECT_VERSION_UNAVAILABLE", gas.object_id)


def test_owned_input_with_a_wrong_digest(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    wrong = ObjectRef(coin.object_id, coin.version, ObjectDigest(bytes(range(32))))
    tx = chain.sign(0, TransferCoin(wrong, 5, chain.addresses[1]), gas)
    rejected(
        state,
        tx,
        ObjectDigestMismatchError,
        "OBJECT_DIGEST_MISMATCH",
        coin.object_id,
        wrong.digest,
        coin.digest,
    )


def test_owned_input_of_another_address(chain: Chain, state: AuthorityState) -> None:
    theirs = chain.coins(1)[0]
    _, gas, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(theirs, 5, chain.addresses[0]), gas)
    rejected(state, tx, InvalidOwnerError, "INVALID_OWNER", theirs.object_id, chain.addresses[0])


def test_gas_coin_of_another_address(chain: Chain, state: AuthorityState) -> None:
    coin = chain.coins(0)[0]
    their_gas = chain.coins(1)[0]
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[2]), their_gas)
    rejected(state, tx, InvalidOwnerError, "INVALID_OWNER", their_gas.object_id)


def test_shared_object_named_as_an_owned_input(chain: Chain, state: AuthorityState) -> None:
    system = chain.ref(SYSTEM_STATE_OBJECT_ID)
    _, gas, _ = chain.coins(0)
    tx = chain.sign(0, TransferObjects((system,), chain.addresses[1]), gas)
    rejected(state, tx, InvalidOwnerError, "INVALID_OWNER", SYSTEM_STATE_OBJECT_ID)


# --- gas -------------------------------------------------------------------------------


def test_gas_that_is_not_a_coin(chain: Chain, state: AuthorityState) -> None:
    coin = chain.coins(0)[0]
    other = chain.ref(NOT_A_COIN_ID)
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), other)
    rejected(state, tx, InvalidObjectTypeError, "INVALID_OBJECT_TYPE", "gas_payment", NOT_A_COIN_ID)


def test_gas_balance_below_the_budget(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    budget = BALANCE + 1
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas, budget=budget)
    rejected(
        state,
        tx,
        InsufficientGasError,
        "INSUFFICIENT_GAS",
        "gas_payment",
        gas.object_id,
        BALANCE,
        budget,
    )
    # The whole balance as budget is fine.
    state.validate_transaction(
        chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas, budget=BALANCE)
    )


def test_budget_below_the_fee(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas, budget=FEE - 1)
    rejected(state, tx, InsufficientGasError, "INSUFFICIENT_GAS", "gas_budget", FEE - 1, FEE)
    state.validate_transaction(
        chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas, budget=FEE)
    )


# --- balances --------------------------------------------------------------------------


def test_transfer_coin_above_its_balance(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, BALANCE + 1, chain.addresses[1]), gas)
    error = rejected(
        state,
        tx,
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        coin.object_id,
        BALANCE,
        BALANCE + 1,
    )
    assert "after the fee" not in error.message
    state.validate_transaction(chain.sign(0, TransferCoin(coin, BALANCE, chain.addresses[1]), gas))


def test_transfer_coin_that_is_also_the_gas_coin_leaves_the_fee(
    chain: Chain, state: AuthorityState
) -> None:
    gas = chain.coins(0)[0]
    too_much = BALANCE - FEE + 1
    tx = chain.sign(0, TransferCoin(gas, too_much, chain.addresses[1]), gas)
    rejected(
        state,
        tx,
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        gas.object_id,
        "after the fee",
        BALANCE - FEE,
        too_much,
    )
    state.validate_transaction(
        chain.sign(0, TransferCoin(gas, too_much - 1, chain.addresses[1]), gas)
    )


def test_pay_coins_above_their_total(chain: Chain, state: AuthorityState) -> None:
    a, b, gas = chain.coins(0)
    to = (chain.addresses[1], chain.addresses[2])
    tx = chain.sign(0, PayCoins((a, b), (BALANCE, BALANCE + 1), to), gas)
    error = rejected(
        state,
        tx,
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        a.object_id,
        b.object_id,
        2 * BALANCE,
        2 * BALANCE + 1,
    )
    assert "after the fee" not in error.message
    state.validate_transaction(chain.sign(0, PayCoins((a, b), (BALANCE, BALANCE), to), gas))


def test_pay_coins_including_the_gas_coin_leave_the_fee(
    chain: Chain, state: AuthorityState
) -> None:
    gas, b, _ = chain.coins(0)
    to = (chain.addresses[1], chain.addresses[2])
    total = 2 * BALANCE - FEE
    tx = chain.sign(0, PayCoins((gas, b), (total - 10, 11), to), gas)
    rejected(
        state,
        tx,
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        gas.object_id,
        b.object_id,
        "after the fee",
        total,
        total + 1,
    )
    state.validate_transaction(chain.sign(0, PayCoins((gas, b), (total - 10, 10), to), gas))


def test_split_coin_above_its_balance(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    tx = chain.sign(0, SplitCoin(coin, (BALANCE, 1)), gas)
    rejected(
        state,
        tx,
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        coin.object_id,
        BALANCE,
        BALANCE + 1,
    )
    state.validate_transaction(chain.sign(0, SplitCoin(coin, (BALANCE - 1, 1)), gas))


def test_split_of_the_gas_coin_leaves_the_fee(chain: Chain, state: AuthorityState) -> None:
    gas = chain.coins(0)[0]
    tx = chain.sign(0, SplitCoin(gas, (BALANCE - FEE, 1)), gas)
    rejected(
        state,
        tx,
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        gas.object_id,
        "after the fee",
        BALANCE - FEE,
        BALANCE - FEE + 1,
    )
    state.validate_transaction(chain.sign(0, SplitCoin(gas, (BALANCE - FEE - 1, 1)), gas))


def test_add_stake_above_the_coin_balance(chain: Chain, state: AuthorityState) -> None:
    validator = chain.validator_addresses[0]
    coin, gas, _ = chain.coins(validator)
    tx = chain.sign(validator, AddStake(coin, BALANCE + 1), gas)
    rejected(state, tx, InsufficientBalanceError, "INSUFFICIENT_BALANCE", coin.object_id)
    state.validate_transaction(chain.sign(validator, AddStake(coin, BALANCE), gas))


def test_validator_stake_above_the_coin_balance(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    joiner = chain.addresses[0]
    tx = chain.sign(0, add_validator(joiner, coin, BALANCE + 1), gas)
    rejected(state, tx, InsufficientBalanceError, "INSUFFICIENT_BALANCE", coin.object_id)
    state.validate_transaction(chain.sign(0, add_validator(joiner, coin, BALANCE), gas))


# --- the gas coin used up ------------------------------------------------------------


def test_gas_coin_merged_away(chain: Chain, state: AuthorityState) -> None:
    a, gas, _ = chain.coins(0)
    for kind in (MergeCoins((a, gas)), PayCoins((a, gas), (5,), (chain.addresses[1],))):
        rejected(
            state,
            chain.sign(0, kind, gas),
            InvalidGasUseError,
            "INVALID_GAS_USE",
            "gas_payment",
            gas.object_id,
            "first",
        )
    # Listed first it is the coin merged into, which is fine.
    state.validate_transaction(chain.sign(0, MergeCoins((gas, a)), gas))
    state.validate_transaction(chain.sign(0, PayCoins((gas, a), (5,), (chain.addresses[1],)), gas))


def test_gas_coin_staked_beyond_the_fee(chain: Chain, state: AuthorityState) -> None:
    validator = chain.validator_addresses[0]
    gas = chain.coins(validator)[0]
    state.validate_transaction(chain.sign(validator, AddStake(gas, BALANCE - FEE), gas))
    rejected(
        state,
        chain.sign(validator, AddStake(gas, BALANCE - FEE + 1), gas),
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        gas.object_id,
        "after the fee",
    )
    joiner = chain.addresses[0]
    own_gas = chain.coins(0)[0]
    rejected(
        state,
        chain.sign(0, add_validator(joiner, own_gas, BALANCE - FEE + 1), own_gas),
        InsufficientBalanceError,
        "INSUFFICIENT_BALANCE",
        own_gas.object_id,
        "after the fee",
    )


# --- object types ----------------------------------------------------------------------


def test_coin_operations_on_a_non_coin(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    other = chain.ref(NOT_A_COIN_ID)
    kinds: list[TransactionKind] = [
        TransferCoin(other, 5, chain.addresses[1]),
        SplitCoin(other, (5,)),
        MergeCoins((coin, other)),
        PayCoins((other,), None, (chain.addresses[1],)),
        AddStake(other, 5),
    ]
    for kind in kinds:
        tx = chain.sign(0, kind, gas)
        error = rejected(state, tx, InvalidObjectTypeError, "INVALID_OBJECT_TYPE", NOT_A_COIN_ID)
        assert "not a coin" in error.message


# --- what needs no state ---------------------------------------------------------------


def test_expired_transaction(chain: Chain) -> None:
    state = chain.authority_state(epoch=1)
    assert state.epoch == 1
    coin, gas, _ = chain.coins(0)
    kind = TransferCoin(coin, 5, chain.addresses[1])
    rejected(
        state,
        chain.sign(0, kind, gas, expiration=0),
        TransactionExpiredError,
        "TRANSACTION_EXPIRED",
        "expiration",
        "epoch 0",
        "epoch is 1",
    )
    # Valid through the end of its expiration epoch, and forever without one.
    state.validate_transaction(chain.sign(0, kind, gas, expiration=1))
    state.validate_transaction(chain.sign(0, kind, gas, expiration=None))
    with pytest.raises(TransactionExpiredError):
        check_signature_and_expiry(chain.sign(0, kind, gas, expiration=4), 5)


def test_bad_signature(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    tx = flip_signature(chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    rejected(state, tx, InvalidSignatureError, "INVALID_SIGNATURE")


def test_signature_over_other_bytes(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    signed = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
    other = chain.data(0, TransferCoin(coin, 6, chain.addresses[1]), gas)
    rejected(
        state,
        SignedTransaction(other, signed.tx_signatures),
        InvalidSignatureError,
        "INVALID_SIGNATURE",
    )


def test_signed_by_someone_other_than_the_sender(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    data = chain.data(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
    tx = SignedTransaction.sign(data, chain.accounts[1])
    rejected(
        state,
        tx,
        SignerMismatchError,
        "SIGNER_MISMATCH",
        chain.addresses[1],
        chain.addresses[0],
    )


def test_unsigned_or_twice_signed(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    signed = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
    rejected(
        state, SignedTransaction(signed.data, ()), TransactionError, "INVALID_TRANSACTION", "got 0"
    )
    twice = SignedTransaction(signed.data, signed.tx_signatures * 2)
    rejected(state, twice, TransactionError, "INVALID_TRANSACTION", "got 2")


def _system_kinds(chain: Chain) -> list[TransactionData]:
    prologue = ConsensusCommitPrologue(
        epoch=0,
        round=3,
        commit_index=1,
        commit_timestamp_ms=1_000,
        consensus_commit_digest=CommitDigest.zero(),
    )
    change = ChangeEpoch(epoch=1, protocol_version=1, epoch_start_timestamp_ms=5)
    return [
        chain.genesis,
        TransactionData(prologue, SYSTEM_ADDRESS, None, 0, None),
        TransactionData(change, SYSTEM_ADDRESS, None, 0, None),
    ]


def test_system_transactions_cannot_be_submitted(chain: Chain, state: AuthorityState) -> None:
    gas = chain.coins(0)[0]
    for data in _system_kinds(chain):
        rejected(
            state,
            SignedTransaction(data, ()),
            TransactionError,
            "INVALID_TRANSACTION",
            "system transactions",
        )
        # Not even signed by a real account, with gas.
        forged = TransactionData(data.kind, chain.addresses[0], gas, BUDGET, None)
        rejected(
            state,
            SignedTransaction.sign(forged, chain.accounts[0]),
            TransactionError,
            "INVALID_TRANSACTION",
            "system transactions",
        )


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("zero_budget", "gas_budget"),
        ("zero_amount", "amount"),
        ("listed_twice", "twice"),
        ("no_amounts", "amounts"),
        ("version_too_high", "above the maximum"),
    ],
)
def test_malformed_transactions(
    chain: Chain, state: AuthorityState, name: str, fragment: str
) -> None:
    coin, gas, _ = chain.coins(0)
    to = chain.addresses[1]
    if name == "zero_budget":
        tx = chain.sign(0, TransferCoin(coin, 5, to), gas, budget=0)
    elif name == "zero_amount":
        tx = chain.sign(0, TransferCoin(coin, 0, to), gas)
    elif name == "listed_twice":
        tx = chain.sign(0, MergeCoins((coin, coin)), gas)
    elif name == "version_too_high":
        huge = ObjectRef(coin.object_id, 2**64 - 1, coin.digest)
        tx = chain.sign(0, TransferCoin(huge, 5, to), gas)
    else:
        tx = chain.sign(0, SplitCoin(coin, ()), gas)
    rejected(state, tx, TransactionError, "INVALID_TRANSACTION", fragment)


def test_signature_is_checked_before_inputs(chain: Chain, state: AuthorityState) -> None:
    _, gas, _ = chain.coins(0)
    tx = flip_signature(chain.sign(0, TransferCoin(missing_ref(), 5, chain.addresses[1]), gas))
    rejected(state, tx, InvalidSignatureError, "INVALID_SIGNATURE")


def test_epoch_no_longer_accepting(chain: Chain, state: AuthorityState) -> None:
    coin, gas, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
    state.accepting = False
    rejected(state, tx, EpochEndedError, "EPOCH_ENDED", "epoch 0")
    with pytest.raises(EpochEndedError):
        state.validate_inputs(tx)


# --- check_inputs on its own -----------------------------------------------------------


class Objects:
    """A LiveObjects over a dict: check_inputs reads nothing else."""

    def __init__(self, objects: list[Object]) -> None:
        self.objects = {o.id: o for o in objects}

    def get_live_object(self, object_id: ObjectID) -> Object | None:
        return self.objects.get(object_id)


def test_check_inputs_reads_only_the_objects_given(chain: Chain) -> None:
    coin, gas, _ = chain.coins(0)
    data = chain.data(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
    live = Objects([chain.obj(coin.object_id), chain.obj(gas.object_id)])
    check_inputs(data, live, FEE)
    with pytest.raises(InsufficientGasError, match="gas_budget"):
        check_inputs(data, live, BUDGET + 1)
    with pytest.raises(ObjectNotFoundError, match=str(gas.object_id)):
        check_inputs(data, Objects([chain.obj(coin.object_id)]), FEE)
    poorer = chain.obj(coin.object_id).with_coin_balance(4)
    with pytest.raises(ObjectDigestMismatchError):
        check_inputs(data, Objects([poorer, chain.obj(gas.object_id)]), FEE)


def test_every_rejection_has_its_own_stable_code() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, SomaError) and c.__module__ == errors.__name__
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) >= 12
    for c in classes:
        assert c.code.isupper() and " " not in c.code
        if c.__name__ not in {"AuthorityStoppedError", "TransactionNotFoundError"}:
            assert issubclass(c, TransactionRejectedError), c
