"""TransactionManager ordering: a transaction is released only after every earlier
transaction touching one of its objects (inputs, shared objects, objects an earlier one
will create) has executed; independent ones are released at once, earliest first."""

from __future__ import annotations

import random

import pytest

from soma.authority.consensus_handler import commit_prologue
from soma.authority.epoch_store import PendingTransaction, SharedVersion
from soma.authority.synthetic_commits import SyntheticCommits
from soma.authority.transaction_manager import TransactionManager, touched_objects
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import ObjectDigest
from soma.types.object import ObjectRef
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID
from soma.types.transaction import (
    AddStake,
    SignedTransaction,
    SplitCoin,
    TransactionData,
    TransactionKind,
    TransferCoin,
    TransferObjects,
    WithdrawStake,
)

SENDER = SomaAddress.from_int(0xA)
RECIPIENT = SomaAddress.from_int(0xB)
_gas_counter = iter(range(10_000, 1_000_000))


def ref(object_id: ObjectID | int, version: int = 1) -> ObjectRef:
    oid = object_id if isinstance(object_id, ObjectID) else ObjectID.from_int(object_id)
    return ObjectRef(oid, version, ObjectDigest(bytes(32)))


def tx_of(kind: TransactionKind, gas: int | None = None) -> SignedTransaction:
    """An unsigned transaction (the manager never checks signatures) with its own gas
    coin unless `gas` names one."""
    gas_id = next(_gas_counter) if gas is None else gas
    return SignedTransaction(TransactionData(kind, SENDER, ref(gas_id), 10_000, None), ())


def touching(*ids: int | ObjectID, gas: int | None = None) -> SignedTransaction:
    return tx_of(TransferObjects(tuple(ref(i) for i in ids), RECIPIENT), gas)


def pending(
    tx: SignedTransaction, commit: int, position: int, shared: tuple[SharedVersion, ...] = ()
) -> PendingTransaction:
    return PendingTransaction(tx, commit, position, shared)


def in_order(*txs: SignedTransaction, commit: int = 1) -> list[PendingTransaction]:
    return [pending(tx, commit, i) for i, tx in enumerate(txs)]


def keys(items: list[PendingTransaction]) -> list[tuple[int, int]]:
    return [i.key for i in items]


# --- touched objects -------------------------------------------------------------------


def test_touched_objects_are_inputs_gas_shared_and_created_without_repeats() -> None:
    tx = tx_of(AddStake(ref(1), 5), gas=2)
    touched = touched_objects(pending(tx, 1, 0))
    assert touched == [SYSTEM_STATE_OBJECT_ID, ObjectID.from_int(1), ObjectID.from_int(2)]
    withdraw = tx_of(WithdrawStake(5), gas=2)
    assert touched_objects(pending(withdraw, 1, 0)) == [
        SYSTEM_STATE_OBJECT_ID,
        ObjectID.from_int(2),
        ObjectID.derive(withdraw.digest(), 0),
    ]
    same_coin_as_gas = tx_of(TransferCoin(ref(3), None, RECIPIENT), gas=3)
    assert touched_objects(pending(same_coin_as_gas, 1, 1)) == [ObjectID.from_int(3)]
    split = tx_of(SplitCoin(ref(4), (1, 2, 3)), gas=5)
    assert touched_objects(pending(split, 1, 2))[2:] == [
        ObjectID.derive(split.digest(), i) for i in range(3)
    ]


def test_a_commit_prologue_touches_nothing_and_is_released_at_once() -> None:
    commits = SyntheticCommits()
    prologue = commit_prologue(0, commits.next([]))
    item = pending(prologue, 1, 0)
    assert touched_objects(item) == []
    manager = TransactionManager()
    manager.enqueue([item])
    assert manager.take_ready() == [item]
    manager.executed(item)
    assert len(manager) == 0


# --- release rules ---------------------------------------------------------------------


def test_independent_transactions_are_released_at_once() -> None:
    items = in_order(touching(1), touching(2), touching(3, 4))
    manager = TransactionManager()
    manager.enqueue(items)
    assert manager.ready_count == 3
    assert manager.take_ready() == items
    assert manager.take_ready() == []
    assert len(manager) == 3  # released, not yet executed
    for item in items:
        manager.executed(item)
    assert len(manager) == 0 and manager.ready_count == 0


def test_a_transaction_waits_for_every_earlier_one_touching_its_objects() -> None:
    t0 = touching(9)
    t1 = touching(1)
    t2 = touching(1)
    t3 = touching(1, 2, 9)
    t4 = touching(2)
    items = in_order(t0, t1, t2, t3, t4)
    manager = TransactionManager()
    manager.enqueue(items)
    assert keys(manager.take_ready()) == [(1, 0), (1, 1)]
    # t3 needs both t0 (object 9) and t2 (object 1, after t1).
    manager.executed(items[1])
    assert keys(manager.take_ready()) == [(1, 2)]
    manager.executed(items[2])
    assert manager.take_ready() == []  # still behind t0
    manager.executed(items[0])
    assert keys(manager.take_ready()) == [(1, 3)]
    # t4 only touches object 2, but t3 came earlier and touches it too.
    manager.executed(items[3])
    assert keys(manager.take_ready()) == [(1, 4)]
    manager.executed(items[4])
    assert len(manager) == 0


def test_a_user_of_an_object_waits_for_the_transaction_that_creates_it() -> None:
    split = tx_of(SplitCoin(ref(1), (5, 6)))
    created = ObjectID.derive(split.digest(), 1)
    never_created = ObjectID.derive(split.digest(), 2)  # beyond what the split makes
    user = touching(created)
    unrelated = touching(never_created)
    items = in_order(split, user, unrelated)
    manager = TransactionManager()
    manager.enqueue(items)
    assert keys(manager.take_ready()) == [(1, 0), (1, 2)]
    manager.executed(items[0])
    assert keys(manager.take_ready()) == [(1, 1)]


def test_a_shared_object_orders_its_users_and_nothing_else() -> None:
    stakes = [tx_of(AddStake(ref(100 + i), 5)) for i in range(3)]
    transfer = touching(7)
    shared = (SharedVersion(SYSTEM_STATE_OBJECT_ID, 1),)
    items = [pending(tx, 1, i, shared) for i, tx in enumerate(stakes)]
    items.append(pending(transfer, 1, 3))
    manager = TransactionManager()
    manager.enqueue(items)
    # The transfer is not held up behind the system-state queue.
    assert keys(manager.take_ready()) == [(1, 0), (1, 3)]
    manager.executed(items[3])
    for i in range(1, 3):
        manager.executed(items[i - 1])
        assert keys(manager.take_ready()) == [(1, i)]


def test_released_transactions_come_out_in_commit_order() -> None:
    first = touching(1)
    waits_on_first = touching(1)
    later = touching(2)
    items = [pending(first, 1, 0), pending(waits_on_first, 1, 5), pending(later, 2, 0)]
    manager = TransactionManager()
    manager.enqueue(items)
    assert keys(manager.take_ready(limit=1)) == [(1, 0)]
    manager.executed(items[0])
    # (2, 0) was ready first, but (1, 5) comes earlier in commit order.
    assert keys(manager.take_ready()) == [(1, 5), (2, 0)]


def test_take_ready_respects_its_limit() -> None:
    items = in_order(*(touching(i) for i in range(1, 6)))
    manager = TransactionManager()
    manager.enqueue(items)
    assert keys(manager.take_ready(2)) == [(1, 0), (1, 1)]
    assert keys(manager.take_ready(2)) == [(1, 2), (1, 3)]
    assert keys(manager.take_ready(2)) == [(1, 4)]


def test_executed_out_of_turn_raises() -> None:
    items = in_order(touching(1), touching(1))
    manager = TransactionManager()
    manager.enqueue(items)
    with pytest.raises(RuntimeError, match=r"\(1, 1\) executed before its turn"):
        manager.executed(items[1])


def test_enqueueing_twice_and_reporting_twice_are_no_ops() -> None:
    items = in_order(touching(1), touching(1))
    manager = TransactionManager()
    manager.enqueue(items)
    manager.enqueue(items[:1])
    assert len(manager) == 2 and manager.contains((1, 0)) and manager.contains((1, 1))
    assert keys(manager.take_ready()) == [(1, 0)]
    manager.executed(items[0])
    manager.executed(items[0])
    assert not manager.contains((1, 0))
    assert keys(manager.take_ready()) == [(1, 1)]
    manager.executed(items[1])
    assert len(manager) == 0


@pytest.mark.parametrize("seed", range(8))
def test_random_schedules_respect_the_order_per_object(seed: int) -> None:
    """Any execution order the manager allows runs every pair of transactions sharing an
    object in commit order, and every transaction eventually runs."""
    rng = random.Random(seed)
    items: list[PendingTransaction] = []
    makers: list[SignedTransaction] = []
    for commit in range(1, 6):
        for position in range(rng.randint(1, 8)):
            ids = rng.sample(range(1, 12), rng.randint(1, 3))
            kind: TransactionKind
            if rng.random() < 0.3 and makers:
                # Use an object an earlier split will create.
                created = ObjectID.derive(rng.choice(makers).digest(), 0)
                kind = TransferObjects((*map(ref, ids), ref(created)), RECIPIENT)
            elif rng.random() < 0.3:
                kind = SplitCoin(ref(ids[0]), (1,))
            else:
                kind = TransferObjects(tuple(ref(i) for i in ids), RECIPIENT)
            tx = tx_of(kind, gas=rng.choice([None, 50, 51]))
            if isinstance(kind, SplitCoin):
                makers.append(tx)
            items.append(pending(tx, commit, position))
    manager = TransactionManager()
    manager.enqueue(items)
    touched = {item.key: set(touched_objects(item)) for item in items}
    done: list[tuple[int, int]] = []
    released: list[PendingTransaction] = []
    while len(done) < len(items):
        released += manager.take_ready()
        assert released, "a transaction never became ready"
        item = released.pop(rng.randrange(len(released)))
        for earlier in items:
            if earlier.key < item.key and touched[earlier.key] & touched[item.key]:
                assert earlier.key in done, (earlier.key, item.key)
        manager.executed(item)
        done.append(item.key)
    assert len(manager) == 0 and manager.ready_count == 0
