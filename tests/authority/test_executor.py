"""`execute_transaction` run directly against an AuthorityStore holding a genesis: Lamport
versions, the fee, every transaction kind, failures (charged, versions bumped, nothing
else changed), double spends, an unpayable gas coin, determinism and created IDs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from soma.authority.execution.executor import (
    SharedVersionMismatchError,
    created_object_count,
    execute_transaction,
    lamport_version,
)
from soma.authority.store import TransactionOutputs
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import ObjectDigest
from soma.types.effects import (
    CoinBalanceOverflow,
    ExecutionFailure,
    ExecutionFailureStatus,
    ExecutionSuccess,
    IDOperation,
    InputObjectConsumed,
    InsufficientCoinBalance,
    InsufficientGas,
    InvalidArguments,
    InvalidObjectType,
    InvalidOwnership,
    ObjectNotFound,
    TransactionEffects,
    ValidatorAlreadyExists,
    ValidatorNotFound,
)
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.object import AddressOwner, Object, ObjectRef
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, Validator
from soma.types.transaction import (
    AddStake,
    AddValidator,
    MergeCoins,
    PayCoins,
    RemoveValidator,
    SignedTransaction,
    SplitCoin,
    TransactionKind,
    TransferCoin,
    TransferObjects,
    WithdrawStake,
)
from tests.authority.execution.helpers import (
    MIN_STAKE,
    PARAMETERS,
    STAKE,
    add_validator,
    chain_supply,
    not_a_coin,
)
from tests.authority.helpers import BALANCE, FEE, Chain
from tests.authority.index_scan import scan

NOT_A_COIN_ID = ObjectID.from_int(0xBEEF)


def _not_a_coin(addresses: list[SomaAddress]) -> list[Object]:
    return [not_a_coin(NOT_A_COIN_ID, addresses[0])]


def _new_chain() -> Chain:
    """Five validators staking STAKE each (one may leave and keep min_validators)."""
    return Chain(
        coins_per_account=4,
        extra_objects=_not_a_coin,
        validators=5,
        stakes=[STAKE] * 5,
        parameters=PARAMETERS,
    )


@pytest.fixture
def chain() -> Chain:
    return _new_chain()


def supply(chain: Chain) -> int:
    """Coin balances plus validators' stake over every live object."""
    return chain_supply(chain).total


def snapshot(chain: Chain) -> dict[ObjectID, Object]:
    return {ref.object_id: chain.obj(ref.object_id) for ref in chain.store.live_refs()}


def check_owner_index(chain: Chain) -> None:
    """The owner index lists exactly the live address-owned objects, at their live refs;
    the coin and balance indexes hold exactly those objects' coins and totals."""
    expected = scan(chain.store)
    assert list(chain.store.owner_index.items()) == expected.owner_table()
    assert list(chain.store.coin_index.items()) == expected.coin_table()
    assert dict(chain.store.balance_index.items()) == expected.balance_table()


def run_ok(chain: Chain, tx: SignedTransaction) -> TransactionEffects:
    """Execute a transaction that must succeed; checks the fee, the supply and the
    owner index."""
    before = supply(chain)
    effects = chain.run(tx).effects
    assert effects.status == ExecutionSuccess(), effects.status
    assert effects.gas_used == FEE
    assert supply(chain) == before - FEE
    check_owner_index(chain)
    return effects


def owned_by(chain: Chain, address: SomaAddress) -> set[ObjectID]:
    return {r.object_id for r in chain.refs(address)}


# --- versions and the fee --------------------------------------------------------------


def test_lamport_version_is_the_highest_input_version_plus_one(chain: Chain) -> None:
    c1, c2, gas, _ = chain.coins(0)
    to = chain.addresses[1]
    first = run_ok(chain, chain.sign(0, TransferCoin(c1, 5, to), gas))
    assert first.lamport_version == 2
    assert {r.version for r in first.all_written()} == {2}
    # The gas coin is now at 2, c2 still at 1: everything written goes to 3.
    gas2 = chain.ref(gas.object_id)
    tx = chain.sign(0, TransferCoin(c2, 5, to), gas2)
    assert lamport_version(tx.data, {}) == 3
    second = run_ok(chain, tx)
    assert second.lamport_version == 3
    assert {r.version for r in second.all_written()} == {3}
    assert chain.obj(c2.object_id).version == 3
    assert chain.obj(gas.object_id).version == 3
    assert chain.obj(c1.object_id).version == 2


def test_lamport_version_counts_the_shared_system_state(chain: Chain) -> None:
    v0, v1 = chain.validator_addresses[:2]
    c0, g0, _, _ = chain.coins(v0)
    first = run_ok(chain, chain.sign(v0, AddStake(c0, 100), g0))
    assert first.lamport_version == 2
    assert chain.system_version() == 2
    # Validator 1's coins are at version 1, but the system state is at 2.
    c1, g1, _, _ = chain.coins(v1)
    second = run_ok(chain, chain.sign(v1, AddStake(c1, 100), g1))
    assert second.lamport_version == 3
    assert chain.system_version() == 3
    assert chain.obj(c1.object_id).version == 3
    assert chain.obj(g1.object_id).version == 3
    data = chain.sign(v1, AddStake(c1, 1), g1).data
    assert lamport_version(data, {SYSTEM_STATE_OBJECT_ID: 41}) == 42


def test_fee_is_taken_from_the_gas_coin_and_recorded(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas, budget=50 * FEE)
    effects = run_ok(chain, tx)
    assert effects.gas_used == FEE  # the fee, not the budget
    assert chain.balance(gas.object_id) == BALANCE - FEE
    assert chain.balance(coin.object_id) == BALANCE - 5
    gas_ref = effects.gas_object()
    assert gas_ref == chain.ref(gas.object_id)
    assert effects.gas_object_index is not None
    assert effects.changed_objects[effects.gas_object_index].object_id == gas.object_id
    assert effects.executed_epoch == 0


def test_effects_depend_on_the_transactions_that_wrote_the_inputs(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    genesis = chain.genesis.digest()
    first = run_ok(chain, chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    assert first.dependencies == (genesis,)
    other = chain.coins(0)[2]
    second = run_ok(
        chain, chain.sign(0, TransferCoin(other, 5, chain.addresses[1]), chain.ref(gas.object_id))
    )
    assert second.dependencies == tuple(sorted({genesis, first.transaction_digest}))


def test_effects_are_canonical_bytes(chain: Chain) -> None:
    a, b, gas, _ = chain.coins(0)
    kind = PayCoins((a, b), (10, 20), (chain.addresses[1], chain.addresses[2]))
    effects = run_ok(chain, chain.sign(0, kind, gas))
    assert TransactionEffects.from_bytes(effects.to_bytes()) == effects


# --- every kind ------------------------------------------------------------------------


def test_transfer_coin_with_an_amount_makes_a_new_coin(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    to = chain.addresses[1]
    tx = chain.sign(0, TransferCoin(coin, 1234, to), gas)
    effects = run_ok(chain, tx)
    new_id = ObjectID.derive(tx.digest(), 0)
    assert [r.object_id for r in effects.created()] == [new_id]
    new = chain.obj(new_id)
    assert new.coin_balance() == 1234
    assert new.owner == AddressOwner(to)
    assert new.version == effects.lamport_version
    assert new.previous_transaction == tx.digest()
    assert chain.balance(coin.object_id) == BALANCE - 1234
    assert chain.obj(coin.object_id).owner == AddressOwner(chain.addresses[0])
    assert new_id in owned_by(chain, to)


def test_transfer_coin_without_an_amount_moves_the_coin(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    to = chain.addresses[1]
    effects = run_ok(chain, chain.sign(0, TransferCoin(coin, None, to), gas))
    assert effects.created() == [] and effects.deleted() == []
    moved = chain.obj(coin.object_id)
    assert moved.owner == AddressOwner(to)
    assert moved.coin_balance() == BALANCE
    assert coin.object_id in owned_by(chain, to)
    assert coin.object_id not in owned_by(chain, chain.addresses[0])


def test_transfer_of_the_whole_gas_coin_sends_it_net_of_the_fee(chain: Chain) -> None:
    gas = chain.coins(0)[0]
    to = chain.addresses[1]
    run_ok(chain, chain.sign(0, TransferCoin(gas, None, to), gas))
    moved = chain.obj(gas.object_id)
    assert moved.owner == AddressOwner(to)
    assert moved.coin_balance() == BALANCE - FEE


def test_pay_coins_with_amounts(chain: Chain) -> None:
    a, b, gas, _ = chain.coins(0)
    to = (chain.addresses[1], chain.addresses[2])
    tx = chain.sign(0, PayCoins((a, b), (100, 250), to), gas)
    effects = run_ok(chain, tx)
    assert effects.deleted() == [b.object_id]
    assert chain.store.get_live_object(b.object_id) is None
    assert chain.balance(a.object_id) == 2 * BALANCE - 350
    for i, (amount, recipient) in enumerate(zip((100, 250), to, strict=True)):
        paid = chain.obj(ObjectID.derive(tx.digest(), i))
        assert paid.coin_balance() == amount
        assert paid.owner == AddressOwner(recipient)
    assert b.object_id not in owned_by(chain, chain.addresses[0])


def test_pay_coins_without_amounts_sends_the_merged_coin(chain: Chain) -> None:
    a, b, gas, _ = chain.coins(0)
    to = chain.addresses[1]
    effects = run_ok(chain, chain.sign(0, PayCoins((a, b), None, (to,)), gas))
    assert effects.created() == []
    assert effects.deleted() == [b.object_id]
    merged = chain.obj(a.object_id)
    assert merged.coin_balance() == 2 * BALANCE
    assert merged.owner == AddressOwner(to)
    assert owned_by(chain, to) >= {a.object_id}


def test_merge_coins(chain: Chain) -> None:
    a, b, c, gas = chain.coins(0)
    effects = run_ok(chain, chain.sign(0, MergeCoins((a, b, c)), gas))
    assert sorted(effects.deleted()) == sorted([b.object_id, c.object_id])
    assert chain.balance(a.object_id) == 3 * BALANCE
    assert owned_by(chain, chain.addresses[0]) == {a.object_id, gas.object_id, NOT_A_COIN_ID}
    ops = {c.object_id: c.change.id_operation for c in effects.changed_objects}
    assert ops[b.object_id] is IDOperation.DELETED
    assert ops[a.object_id] is IDOperation.NONE


def test_merge_into_the_gas_coin(chain: Chain) -> None:
    gas, b, _, _ = chain.coins(0)
    run_ok(chain, chain.sign(0, MergeCoins((gas, b)), gas))
    assert chain.balance(gas.object_id) == 2 * BALANCE - FEE


def test_split_coin(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    amounts = (1, 20, 300)
    tx = chain.sign(0, SplitCoin(coin, amounts), gas)
    effects = run_ok(chain, tx)
    assert chain.balance(coin.object_id) == BALANCE - sum(amounts)
    for i, amount in enumerate(amounts):
        piece = chain.obj(ObjectID.derive(tx.digest(), i))
        assert piece.coin_balance() == amount
        assert piece.owner == AddressOwner(chain.addresses[0])
    assert len(effects.created()) == 3


def test_transfer_objects(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    other = chain.obj(NOT_A_COIN_ID)
    to = chain.addresses[2]
    run_ok(chain, chain.sign(0, TransferObjects((coin, other.reference()), to), gas))
    assert chain.obj(coin.object_id).owner == AddressOwner(to)
    assert chain.obj(NOT_A_COIN_ID).owner == AddressOwner(to)
    assert chain.obj(NOT_A_COIN_ID).contents == other.contents
    assert {coin.object_id, NOT_A_COIN_ID} <= owned_by(chain, to)
    assert owned_by(chain, chain.addresses[0]).isdisjoint({coin.object_id, NOT_A_COIN_ID})


def _stake_of(chain: Chain, address: SomaAddress) -> tuple[int, int]:
    v = chain.system_state().validators.find(address)
    assert v is not None
    return v.voting_stake, v.next_epoch_stake


def test_add_stake_moves_coin_value_into_the_senders_stake(chain: Chain) -> None:
    validator = chain.validator_addresses[1]
    coin, gas, _, _ = chain.coins(validator)
    effects = run_ok(chain, chain.sign(validator, AddStake(coin, 5_000), gas))
    assert chain.balance(coin.object_id) == BALANCE - 5_000
    assert _stake_of(chain, validator) == (STAKE, STAKE + 5_000)
    assert effects.created() == []  # no receipt: the stake is the validator's own
    assert SYSTEM_STATE_OBJECT_ID in {r.object_id for r in effects.mutated()}


def test_add_stake_of_a_whole_coin_deletes_it(chain: Chain) -> None:
    validator = chain.validator_addresses[1]
    coin, gas, _, _ = chain.coins(validator)
    effects = run_ok(chain, chain.sign(validator, AddStake(coin, BALANCE), gas))
    assert effects.deleted() == [coin.object_id]
    assert _stake_of(chain, validator) == (STAKE, STAKE + BALANCE)


def test_add_stake_of_the_whole_gas_coin_after_the_fee_keeps_it_empty(chain: Chain) -> None:
    validator = chain.validator_addresses[1]
    gas = chain.coins(validator)[0]
    effects = run_ok(chain, chain.sign(validator, AddStake(gas, BALANCE - FEE), gas))
    assert effects.deleted() == []
    assert chain.balance(gas.object_id) == 0
    assert _stake_of(chain, validator) == (STAKE, STAKE + BALANCE - FEE)


def test_withdraw_stake_pays_a_new_coin_at_once(chain: Chain) -> None:
    validator = chain.validator_addresses[1]
    gas = chain.coins(validator)[0]
    amount = STAKE - MIN_STAKE
    tx = chain.sign(validator, WithdrawStake(amount), gas)
    effects = run_ok(chain, tx)
    back = chain.obj(ObjectID.derive(tx.digest(), 0))
    assert [r.object_id for r in effects.created()] == [back.id]
    assert back.coin_balance() == amount
    assert back.owner == AddressOwner(validator)
    # This epoch's vote is unchanged; the next epoch's stake is what remains.
    assert _stake_of(chain, validator) == (STAKE, MIN_STAKE)


def test_add_validator_joins_pending_active(chain: Chain) -> None:
    joiner = chain.addresses[2]
    coin, gas, other, _ = chain.coins(2)
    kind = add_validator(joiner, coin, MIN_STAKE)
    tx = chain.sign(2, kind, gas)
    tx.verify()  # the proof of possession and the certificate are good
    run_ok(chain, tx)
    vs = chain.system_state().validators
    assert vs.pending_active == (Validator(kind.metadata, 0, MIN_STAKE),)
    assert len(vs.active) == 5
    assert chain.balance(coin.object_id) == BALANCE - MIN_STAKE
    # A pending validator may add to its stake.
    run_ok(chain, chain.sign(joiner, AddStake(other, 10), chain.ref(gas.object_id)))
    assert _stake_of(chain, joiner) == (0, MIN_STAKE + 10)


def test_remove_validator_marks_it_leaving(chain: Chain) -> None:
    leaver = chain.validator_addresses[1]
    gas = chain.coins(leaver)[0]
    run_ok(chain, chain.sign(leaver, RemoveValidator(), gas))
    vs = chain.system_state().validators
    assert vs.pending_removals == (leaver,)
    assert vs.find_active(leaver) is not None  # until the epoch ends


# --- failures --------------------------------------------------------------------------


def run_failing(
    chain: Chain,
    tx: SignedTransaction,
    error: ExecutionFailureStatus,
    usable: set[ObjectID],
) -> TransactionEffects:
    """Execute a transaction that must fail with `error`: it charges the fee from its gas
    coin, bumps exactly the `usable` inputs to the Lamport version without changing
    them, and changes nothing else."""
    before = snapshot(chain)
    gas_id = tx.data.gas_payment.object_id  # type: ignore[union-attr]
    effects = chain.run(tx).effects
    after = snapshot(chain)
    assert effects.status == ExecutionFailure(error)
    assert effects.gas_used == FEE
    assert effects.gas_object() == after[gas_id].reference()
    changed = {c.object_id for c in effects.changed_objects}
    assert changed == usable
    assert all(c.change.id_operation is IDOperation.NONE for c in effects.changed_objects)
    assert set(after) == set(before)  # nothing created or deleted
    for object_id, obj in after.items():
        old = before[object_id]
        if object_id not in usable:
            assert obj == old, object_id
            continue
        assert obj.version == effects.lamport_version
        assert obj.owner == old.owner
        if object_id == gas_id:
            assert obj.coin_balance() == old.coin_balance() - FEE
        else:
            assert obj.contents == old.contents, object_id
    check_owner_index(chain)
    return effects


def test_transfer_above_the_balance_fails(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, BALANCE + 1, chain.addresses[1]), gas)
    run_failing(
        chain,
        tx,
        InsufficientCoinBalance(coin.object_id, BALANCE, BALANCE + 1),
        {coin.object_id, gas.object_id},
    )


FailureCase = Callable[[Chain], tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]]


def _split_too_much(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, SplitCoin(coin, (BALANCE, 1)), gas)
    return (
        tx,
        InsufficientCoinBalance(coin.object_id, BALANCE, BALANCE + 1),
        {
            coin.object_id,
            gas.object_id,
        },
    )


def _split_gas_too_much(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    gas = chain.coins(0)[0]
    tx = chain.sign(0, SplitCoin(gas, (BALANCE - FEE, 1)), gas)
    return (
        tx,
        InsufficientCoinBalance(gas.object_id, BALANCE - FEE, BALANCE - FEE + 1),
        {gas.object_id},
    )


def _pay_too_much(chain: Chain) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    a, b, gas, _ = chain.coins(0)
    kind = PayCoins((a, b), (BALANCE, BALANCE + 1), (chain.addresses[1], chain.addresses[2]))
    return (
        chain.sign(0, kind, gas),
        InsufficientCoinBalance(a.object_id, 2 * BALANCE, 2 * BALANCE + 1),
        {a.object_id, b.object_id, gas.object_id},
    )


def _merge_a_non_coin(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    a, gas, _, _ = chain.coins(0)
    other = chain.ref(NOT_A_COIN_ID)
    return (
        chain.sign(0, MergeCoins((a, other)), gas),
        InvalidObjectType(NOT_A_COIN_ID),
        {a.object_id, NOT_A_COIN_ID, gas.object_id},
    )


def _merge_gas_away(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    a, gas, _, _ = chain.coins(0)
    return (
        chain.sign(0, MergeCoins((a, gas)), gas),
        InvalidArguments("the gas coin cannot be merged away; list it first"),
        {a.object_id, gas.object_id},
    )


def _pay_with_gas_not_first(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    a, gas, _, _ = chain.coins(0)
    kind = PayCoins((a, gas), (5,), (chain.addresses[1],))
    return (
        chain.sign(0, kind, gas),
        InvalidArguments("the gas coin cannot be merged away; list it first"),
        {a.object_id, gas.object_id},
    )


def _stake_with_nobody(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    coin, gas, _, _ = chain.coins(0)
    sender = chain.addresses[0]
    return (
        chain.sign(0, AddStake(coin, 10), gas),
        ValidatorNotFound(
            f"{sender} is not a validator: only a validator's own account can change its stake"
        ),
        {coin.object_id, gas.object_id, SYSTEM_STATE_OBJECT_ID},
    )


def _stake_more_than_the_gas_coin_keeps(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    validator = chain.validator_addresses[0]
    gas = chain.coins(validator)[0]
    return (
        chain.sign(validator, AddStake(gas, BALANCE - FEE + 1), gas),
        InsufficientCoinBalance(gas.object_id, BALANCE - FEE, BALANCE - FEE + 1),
        {gas.object_id, SYSTEM_STATE_OBJECT_ID},
    )


def _remove_a_non_validator(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    gas = chain.coins(0)[0]
    return (
        chain.sign(0, RemoveValidator(), gas),
        ValidatorNotFound(f"{chain.addresses[0]} is not a validator"),
        {gas.object_id, SYSTEM_STATE_OBJECT_ID},
    )


def _add_an_existing_validator(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    existing = chain.validator_addresses[0]
    metadata = chain.system_state().validators.active[0].metadata
    assert metadata.soma_address == existing
    key = chain.validator_keys[0].authority
    coin, gas = chain.coins(existing)[:2]
    kind = AddValidator(metadata, metadata.proof_of_possession(key), coin, MIN_STAKE)
    return (
        chain.sign(existing, kind, gas),
        ValidatorAlreadyExists(f"{existing} is already a validator"),
        {coin.object_id, gas.object_id, SYSTEM_STATE_OBJECT_ID},
    )


def _reuse_an_authority_key(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    existing = chain.system_state().validators.active[0].metadata
    key = chain.validator_keys[0].authority
    joiner = chain.addresses[1]
    metadata = dataclasses.replace(existing, soma_address=joiner)
    coin, gas = chain.coins(1)[:2]
    kind = AddValidator(metadata, metadata.proof_of_possession(key), coin, MIN_STAKE)
    return (
        chain.sign(1, kind, gas),
        ValidatorAlreadyExists(
            f"the authority key is already registered by {existing.soma_address}"
        ),
        {coin.object_id, gas.object_id, SYSTEM_STATE_OBJECT_ID},
    )


def _withdraw_by_a_non_validator(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    gas = chain.coins(0)[0]
    sender = chain.addresses[0]
    return (
        chain.sign(0, WithdrawStake(10), gas),
        ValidatorNotFound(
            f"{sender} is not a validator: only a validator's own account can change its stake"
        ),
        {gas.object_id, SYSTEM_STATE_OBJECT_ID},
    )


def _transfer_someone_elses(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    theirs = chain.coins(1)[0]
    gas = chain.coins(0)[0]
    return (
        chain.sign(0, TransferObjects((theirs,), chain.addresses[0]), gas),
        InvalidOwnership(theirs.object_id),
        {gas.object_id},
    )


def _transfer_a_missing_object(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    ghost = ObjectRef(ObjectID.from_int(4242), 1, ObjectDigest(bytes(32)))
    gas = chain.coins(0)[0]
    return (
        chain.sign(0, TransferCoin(ghost, 5, chain.addresses[1]), gas),
        ObjectNotFound(ghost.object_id),
        {gas.object_id},
    )


def _transfer_the_system_state(
    chain: Chain,
) -> tuple[SignedTransaction, ExecutionFailureStatus, set[ObjectID]]:
    gas = chain.coins(0)[0]
    system = chain.ref(SYSTEM_STATE_OBJECT_ID)
    return (
        chain.sign(0, TransferObjects((system,), chain.addresses[1]), gas),
        InvalidOwnership(SYSTEM_STATE_OBJECT_ID),
        {gas.object_id},
    )


FAILURES: dict[str, FailureCase] = {
    "split_too_much": _split_too_much,
    "split_gas_too_much": _split_gas_too_much,
    "pay_too_much": _pay_too_much,
    "merge_a_non_coin": _merge_a_non_coin,
    "merge_gas_away": _merge_gas_away,
    "pay_with_gas_not_first": _pay_with_gas_not_first,
    "stake_with_nobody": _stake_with_nobody,
    "stake_more_than_the_gas_coin_keeps": _stake_more_than_the_gas_coin_keeps,
    "remove_a_non_validator": _remove_a_non_validator,
    "add_an_existing_validator": _add_an_existing_validator,
    "reuse_an_authority_key": _reuse_an_authority_key,
    "withdraw_by_a_non_validator": _withdraw_by_a_non_validator,
    "transfer_someone_elses": _transfer_someone_elses,
    "transfer_a_missing_object": _transfer_a_missing_object,
    "transfer_the_system_state": _transfer_the_system_state,
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failures_charge_the_fee_bump_usable_inputs_and_change_nothing_else(
    chain: Chain, case: str
) -> None:
    tx, error, usable = FAILURES[case](chain)
    system_before = chain.system_state()
    supply_before = supply(chain)
    effects = run_failing(chain, tx, error, usable)
    assert supply(chain) == supply_before - FEE
    assert chain.system_state() == system_before
    if SYSTEM_STATE_OBJECT_ID in usable:
        assert chain.system_version() == effects.lamport_version


def test_validator_set_full(chain: Chain) -> None:
    full = Chain(parameters=dataclasses.replace(DEFAULT_PARAMETERS, max_validators=4), validators=4)
    joiner = full.addresses[0]
    coin, gas = full.coins(0)[:2]
    kind = add_validator(joiner, coin, DEFAULT_PARAMETERS.min_validator_stake)
    effects = full.run(full.sign(0, kind, gas)).effects
    assert effects.status == ExecutionFailure(
        InvalidArguments(
            f"the validator set is full: {joiner} joining would make 5 validators in the "
            "next epoch, above max_validators 4"
        )
    )
    assert full.system_state().validators.pending_active == ()


def test_remove_validator_twice_fails(chain: Chain) -> None:
    leaver = chain.validator_addresses[2]
    first, second, _, _ = chain.coins(leaver)
    run_ok(chain, chain.sign(leaver, RemoveValidator(), first))
    effects = chain.run(chain.sign(leaver, RemoveValidator(), second)).effects
    assert effects.status == ExecutionFailure(InvalidArguments(f"{leaver} is already leaving"))
    assert chain.system_state().validators.pending_removals == (leaver,)


def test_merge_overflowing_a_balance_fails() -> None:
    big = 2**63
    chain = Chain(balances=[big, big, BALANCE], coins_per_account=3)
    a, b, gas = sorted(chain.coins(0), key=lambda r: chain.balance(r.object_id), reverse=True)
    assert chain.balance(a.object_id) == big and chain.balance(gas.object_id) == BALANCE
    effects = chain.run(chain.sign(0, MergeCoins((a, b)), gas)).effects
    assert effects.status == ExecutionFailure(CoinBalanceOverflow(a.object_id))
    assert chain.balance(a.object_id) == big and chain.balance(b.object_id) == big
    assert chain.balance(gas.object_id) == BALANCE - FEE


def test_budget_below_the_fee_charges_what_the_budget_allows(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas, budget=FEE // 2)
    effects = chain.run(tx).effects
    assert effects.status == ExecutionFailure(InsufficientGas())
    assert effects.gas_used == FEE // 2
    assert chain.balance(gas.object_id) == BALANCE - FEE // 2
    assert chain.balance(coin.object_id) == BALANCE
    assert effects.created() == []


def test_an_input_consumed_earlier_fails_and_is_not_touched(chain: Chain) -> None:
    coin, gas_a, gas_b, _ = chain.coins(0)
    winner = chain.sign(0, TransferCoin(coin, 100, chain.addresses[1]), gas_a)
    loser = chain.sign(0, TransferCoin(coin, 100, chain.addresses[2]), gas_b)
    run_ok(chain, winner)
    coin_after_winner = chain.obj(coin.object_id)
    effects = run_failing(
        chain, loser, InputObjectConsumed(coin.object_id, coin.version), {gas_b.object_id}
    )
    assert chain.obj(coin.object_id) == coin_after_winner
    assert effects.created() == []
    # The second recipient received nothing: it owns its genesis coins only.
    genesis = chain.genesis.digest()
    assert all(chain.obj(r.object_id).previous_transaction == genesis for r in chain.refs(2))


def test_an_input_deleted_earlier_is_not_found(chain: Chain) -> None:
    # Decided from the live object alone (history may be pruned): a deleted object is
    # simply not there any more.
    a, b, gas_a, gas_b = chain.coins(0)
    run_ok(chain, chain.sign(0, MergeCoins((a, b)), gas_a))
    assert chain.store.get_live_object(b.object_id) is None
    tx = chain.sign(0, TransferCoin(b, 5, chain.addresses[1]), gas_b)
    run_failing(chain, tx, ObjectNotFound(b.object_id), {gas_b.object_id})


def test_an_input_with_a_wrong_digest_is_not_found_and_not_touched(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    wrong = ObjectRef(coin.object_id, coin.version, ObjectDigest(bytes(range(32))))
    tx = chain.sign(0, TransferCoin(wrong, 5, chain.addresses[1]), gas)
    run_failing(chain, tx, ObjectNotFound(coin.object_id), {gas.object_id})
    assert chain.ref(coin.object_id) == coin


def test_a_consumed_gas_coin_charges_nothing_and_changes_nothing(chain: Chain) -> None:
    coin, other, gas, _ = chain.coins(0)
    run_ok(chain, chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    before = snapshot(chain)
    stale = chain.sign(0, TransferCoin(other, 5, chain.addresses[1]), gas)
    effects = chain.run(stale).effects
    assert effects.status == ExecutionFailure(InputObjectConsumed(gas.object_id, 1))
    assert effects.gas_used == 0
    assert effects.changed_objects == ()
    assert effects.gas_object_index is None and effects.gas_object() is None
    assert snapshot(chain) == before
    assert chain.store.get_effects(stale.digest()) == effects


def test_a_consumed_gas_coin_still_moves_the_shared_system_state(chain: Chain) -> None:
    coin, other, gas, _ = chain.coins(0)
    run_ok(chain, chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    system_before = chain.obj(SYSTEM_STATE_OBJECT_ID)
    stale = chain.sign(0, AddStake(other, 10), gas)
    effects = chain.run(stale).effects
    assert effects.status == ExecutionFailure(InputObjectConsumed(gas.object_id, 1))
    assert effects.gas_used == 0
    assert [c.object_id for c in effects.changed_objects] == [SYSTEM_STATE_OBJECT_ID]
    system_after = chain.obj(SYSTEM_STATE_OBJECT_ID)
    assert system_after.version == effects.lamport_version
    assert system_after.contents == system_before.contents
    assert chain.obj(other.object_id).version == 1


@pytest.mark.parametrize("why", ["not_a_coin", "not_the_senders", "missing"])
def test_unusable_gas_charges_nothing(chain: Chain, why: str) -> None:
    coin = chain.coins(0)[0]
    error: ExecutionFailureStatus
    if why == "not_a_coin":
        gas, error = chain.ref(NOT_A_COIN_ID), InvalidObjectType(NOT_A_COIN_ID)
    elif why == "not_the_senders":
        gas = chain.coins(1)[0]
        error = InvalidOwnership(gas.object_id)
    else:
        gas = ObjectRef(ObjectID.from_int(31337), 3, ObjectDigest(bytes(32)))
        error = ObjectNotFound(gas.object_id)
    before = snapshot(chain)
    effects = chain.run(chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas)).effects
    assert effects.status == ExecutionFailure(error)
    assert effects.gas_used == 0 and effects.changed_objects == ()
    assert snapshot(chain) == before


def test_the_smallest_failing_input_is_reported(chain: Chain) -> None:
    gas = chain.coins(0)[0]
    ghosts = [ObjectRef(ObjectID.from_int(n), 1, ObjectDigest(bytes(32))) for n in (9, 3, 7)]
    tx = chain.sign(0, MergeCoins(tuple(ghosts)), gas)
    effects = chain.run(tx).effects
    assert effects.status == ExecutionFailure(ObjectNotFound(ObjectID.from_int(3)))


def test_a_shared_input_at_an_unassigned_version_stops_execution(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, AddStake(coin, 10), gas)
    with pytest.raises(SharedVersionMismatchError):
        execute_transaction(tx, {SYSTEM_STATE_OBJECT_ID: 2}, chain.store, 0, FEE)


# --- determinism and created objects ---------------------------------------------------


def _step(chain: Chain, ids: list[ObjectID], genesis_a: ObjectRef, i: int) -> SignedTransaction:
    """The i-th of a mix of kinds, built from the chain's current state."""
    a, b, c, gas = ids
    ref = chain.ref
    kinds: list[TransactionKind] = [
        SplitCoin(ref(a), (10, 20)),
        add_validator(chain.addresses[0], ref(b), MIN_STAKE),
        PayCoins((ref(c),), (1, 2), tuple(chain.addresses[1:3])),
        TransferCoin(genesis_a, 5, chain.addresses[1]),  # consumed: fails
        TransferCoin(ref(a), BALANCE * 2, chain.addresses[1]),  # too much: fails
    ]
    return chain.sign(0, kinds[i], ref(gas))


def test_same_inputs_give_byte_identical_effects(chain: Chain) -> None:
    other = _new_chain()
    assert other.genesis.digest() == chain.genesis.digest()
    start = chain.coins(0)
    ids = [r.object_id for r in start]
    statuses = []
    for i in range(5):
        tx = _step(chain, ids, start[0], i)
        assert tx == _step(other, ids, start[0], i)
        dry_one = chain.run(tx, write=False)
        dry_two = chain.run(tx, write=False)
        ours = chain.run(tx)
        theirs = other.run(tx)
        assert ours.effects.to_bytes() == theirs.effects.to_bytes() == dry_one.effects.to_bytes()
        assert dry_two.effects.to_bytes() == ours.effects.to_bytes()
        assert ours.written == theirs.written and ours.deleted == theirs.deleted
        assert ours.owner_inserts == theirs.owner_inserts
        assert ours.owner_removals == theirs.owner_removals
        assert ours.coin_inserts == theirs.coin_inserts
        assert ours.coin_removals == theirs.coin_removals
        assert ours.balance_changes == theirs.balance_changes
        statuses.append(ours.effects.status.is_success())
    assert statuses == [True, True, True, False, False]
    assert list(chain.store.live_refs()) == list(other.store.live_refs())


KindFactory = Callable[[Chain], tuple[int | SomaAddress, TransactionKind, ObjectRef]]


def _kinds() -> dict[str, KindFactory]:
    def coins(chain: Chain, n: int | SomaAddress = 0) -> list[ObjectRef]:
        return chain.coins(n)

    return {
        "transfer_amount": lambda ch: (
            0,
            TransferCoin(coins(ch)[0], 9, ch.addresses[1]),
            coins(ch)[1],
        ),
        "transfer_all": lambda ch: (
            0,
            TransferCoin(coins(ch)[0], None, ch.addresses[1]),
            coins(ch)[1],
        ),
        "pay_amounts": lambda ch: (
            0,
            PayCoins((coins(ch)[0], coins(ch)[1]), (1, 2, 3), tuple(ch.addresses[:3])),
            coins(ch)[2],
        ),
        "pay_all": lambda ch: (
            0,
            PayCoins((coins(ch)[0], coins(ch)[1]), None, (ch.addresses[1],)),
            coins(ch)[2],
        ),
        "merge": lambda ch: (0, MergeCoins((coins(ch)[0], coins(ch)[1])), coins(ch)[2]),
        "split": lambda ch: (0, SplitCoin(coins(ch)[0], (4, 5, 6, 7)), coins(ch)[1]),
        "transfer_objects": lambda ch: (
            0,
            TransferObjects((coins(ch)[0], ch.ref(NOT_A_COIN_ID)), ch.addresses[1]),
            coins(ch)[1],
        ),
        "add_stake": lambda ch: (
            ch.validator_addresses[0],
            AddStake(coins(ch, ch.validator_addresses[0])[0], 77),
            coins(ch, ch.validator_addresses[0])[1],
        ),
        "add_stake_all": lambda ch: (
            ch.validator_addresses[0],
            AddStake(coins(ch, ch.validator_addresses[0])[0], BALANCE),
            coins(ch, ch.validator_addresses[0])[1],
        ),
        "withdraw_stake": lambda ch: (
            ch.validator_addresses[0],
            WithdrawStake(77),
            coins(ch, ch.validator_addresses[0])[1],
        ),
        "add_validator": lambda ch: (
            1,
            add_validator(ch.addresses[1], coins(ch, 1)[0], MIN_STAKE),
            coins(ch, 1)[1],
        ),
        "remove_validator": lambda ch: (
            ch.validator_addresses[3],
            RemoveValidator(),
            ch.coins(ch.validator_addresses[3])[0],
        ),
    }


KINDS = _kinds()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_created_ids_are_derived_and_counted(chain: Chain, name: str) -> None:
    sender, kind, gas = KINDS[name](chain)
    tx = chain.sign(sender, kind, gas)
    effects = run_ok(chain, tx)
    created = sorted(r.object_id for r in effects.created())
    count = created_object_count(kind)
    assert len(created) == count
    assert created == sorted(ObjectID.derive(tx.digest(), i) for i in range(count))
    for object_id in created:
        assert chain.obj(object_id).previous_transaction == tx.digest()


def test_a_failed_transaction_creates_nothing(chain: Chain) -> None:
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, SplitCoin(coin, (BALANCE, 5)), gas)
    outputs: TransactionOutputs = chain.run(tx)
    assert created_object_count(tx.data.kind) == 2
    assert outputs.effects.created() == []
    for i in range(2):
        assert chain.store.get_live_object(ObjectID.derive(tx.digest(), i)) is None
