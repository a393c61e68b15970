"""The state accumulator (LtHash over live object refs): order independence, removal as
the inverse of insertion, its byte form, lane arithmetic against a plain reference, and
`apply_effects` agreeing with recomputing the accumulator from the live set."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import soma.authority.accumulator as accumulator_module
from soma.authority.accumulator import (
    LANES,
    STATE_BYTES,
    StateAccumulator,
    accumulate,
    effects_changes,
)
from soma.types.base import ObjectID
from soma.types.digests import ObjectDigest
from soma.types.effects import TransactionEffects
from soma.types.error import InvalidValueError
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.object import ObjectRef
from soma.types.transaction import (
    AddStake,
    MergeCoins,
    PayCoins,
    SignedTransaction,
    SplitCoin,
    TransferCoin,
    WithdrawStake,
)
from tests.authority.helpers import BALANCE, Chain
from tests.authority.network import LocalValidators

ELEMENT_TAG = b"soma::StateAccumulator::"


def make_ref(n: int, version: int = 1) -> ObjectRef:
    return ObjectRef(ObjectID.from_int(n), version, ObjectDigest(bytes([n % 256]) * 32))


REFS = [make_ref(n, v) for n in range(1, 6) for v in (1, 2)]


def reference_lanes(counts: dict[bytes, int]) -> bytes:
    """The multiset hash computed lane by lane, the slow and obvious way."""
    lanes = [0] * LANES
    for data, count in counts.items():
        element = hashlib.shake_256(ELEMENT_TAG + data).digest(STATE_BYTES)
        for i, value in enumerate(struct.unpack(f"<{LANES}H", element)):
            lanes[i] = (lanes[i] + count * value) % 2**16
    return struct.pack(f"<{LANES}H", *lanes)


# --- algebra ---------------------------------------------------------------------------


def test_empty_accumulator_is_all_zero_lanes() -> None:
    empty = StateAccumulator()
    assert empty.to_bytes() == bytes(STATE_BYTES)
    assert accumulate([]) == empty
    assert len(empty.root()) == 32
    assert empty.root() == StateAccumulator().root()


def test_insertion_order_does_not_matter() -> None:
    rng = random.Random(3)
    baseline = accumulate(REFS)
    for _ in range(5):
        shuffled = REFS[:]
        rng.shuffle(shuffled)
        acc = accumulate(shuffled)
        assert acc == baseline
        assert acc.to_bytes() == baseline.to_bytes()
        assert acc.root() == baseline.root()
        assert hash(acc) == hash(baseline)


def test_remove_is_the_inverse_of_insert() -> None:
    acc = accumulate(REFS[:4])
    before = acc.copy()
    acc.insert(REFS[7])
    assert acc != before
    acc.remove(REFS[7])
    assert acc == before
    # Removing first (a "negative" element) and inserting later also cancels.
    acc.remove(REFS[8])
    acc.insert(REFS[8])
    assert acc == before
    for ref in REFS[:4]:
        acc.remove(ref)
    assert acc == StateAccumulator()


def test_distinct_sets_and_multiplicities_differ() -> None:
    one = accumulate([REFS[0]])
    two = accumulate([REFS[0], REFS[0]])
    other = accumulate([REFS[1]])
    assert len({one.root(), two.root(), other.root(), StateAccumulator().root()}) == 4
    # A new version of an object is a different element.
    assert accumulate([make_ref(1, 1)]) != accumulate([make_ref(1, 2)])


def test_union_adds_a_delta() -> None:
    acc = accumulate(REFS[:3])
    delta = StateAccumulator()
    delta.insert(REFS[5])
    delta.remove(REFS[0])
    acc.union(delta)
    assert acc == accumulate([*REFS[1:3], REFS[5]])


def test_copy_is_independent() -> None:
    acc = accumulate(REFS[:2])
    fork = acc.copy()
    fork.insert(REFS[3])
    assert acc == accumulate(REFS[:2])
    assert fork == accumulate([*REFS[:2], REFS[3]])


def test_element_wraps_around_after_two_to_the_sixteen_insertions() -> None:
    # Lanes are 16 bits: 2^16 copies of one element cancel out exactly (every lane
    # wraps, and no carry leaks into a neighbour).
    total = StateAccumulator()
    total.insert(REFS[0])
    for doubling in range(16):
        assert total != StateAccumulator(), doubling
        total.union(total.copy())
    assert total == StateAccumulator()


def test_lanes_match_the_reference_sum() -> None:
    acc = StateAccumulator()
    counts: dict[bytes, int] = {}
    for ref in [*REFS, *REFS[:3]]:
        acc.insert(ref)
        counts[ref.to_bytes()] = counts.get(ref.to_bytes(), 0) + 1
    acc.remove(REFS[9])
    counts[REFS[9].to_bytes()] -= 1
    assert acc.to_bytes() == reference_lanes(counts)


# --- bytes -----------------------------------------------------------------------------


def test_bytes_round_trip() -> None:
    acc = accumulate(REFS)
    raw = acc.to_bytes()
    assert len(raw) == STATE_BYTES == 2048
    back = StateAccumulator.from_bytes(raw)
    assert back == acc and back.root() == acc.root()
    assert StateAccumulator.from_bytes(bytes(STATE_BYTES)) == StateAccumulator()
    # Every byte pattern is a valid state, and round-trips.
    noise = random.Random(1).randbytes(STATE_BYTES)
    assert StateAccumulator.from_bytes(noise).to_bytes() == noise


@pytest.mark.parametrize("length", [0, 1, STATE_BYTES - 1, STATE_BYTES + 1, 2 * STATE_BYTES])
def test_from_bytes_of_the_wrong_length(length: int) -> None:
    with pytest.raises(InvalidValueError) as info:
        StateAccumulator.from_bytes(bytes(length))
    assert info.value.code == "BCS_INVALID_VALUE"
    assert str(STATE_BYTES) in info.value.message and f"got {length}" in info.value.message


# --- a hypothesis property ---------------------------------------------------------------

operations = st.lists(st.tuples(st.booleans(), st.integers(0, len(REFS) - 1)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops=operations, seed=st.integers(0, 2**32 - 1))
def test_any_sequence_of_inserts_and_removes_is_its_net_multiset(
    ops: list[tuple[bool, int]], seed: int
) -> None:
    acc = StateAccumulator()
    counts: dict[bytes, int] = {}
    for insert, index in ops:
        ref = REFS[index]
        if insert:
            acc.insert(ref)
        else:
            acc.remove(ref)
        key = ref.to_bytes()
        counts[key] = counts.get(key, 0) + (1 if insert else -1)
    assert acc.to_bytes() == reference_lanes(counts)
    # The same operations in any other order give the same state.
    shuffled = ops[:]
    random.Random(seed).shuffle(shuffled)
    other = StateAccumulator()
    for insert, index in shuffled:
        (other.insert if insert else other.remove)(REFS[index])
    assert other == acc
    # With no negative counts, it is the accumulator of the resulting multiset.
    if all(c >= 0 for c in counts.values()):
        net = [ref for ref in REFS for _ in range(counts.get(ref.to_bytes(), 0))]
        assert accumulate(net) == acc
    assert StateAccumulator.from_bytes(acc.to_bytes()) == acc


# --- effects -----------------------------------------------------------------------------


def test_apply_effects_follows_the_live_set_through_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = Chain(coins_per_account=4)
    stored = chain.store.accumulator_at(0, 0)
    assert stored is not None
    acc = StateAccumulator.from_bytes(stored)
    assert acc == accumulate(chain.store.live_refs())
    a, b, _, gas = chain.coins(0)
    validator = chain.validator_addresses[0]
    stake_coin, validator_gas = chain.coins(validator)[:2]
    steps: list[Callable[[], SignedTransaction]] = [
        lambda: chain.sign(0, SplitCoin(chain.ref(a.object_id), (5, 6)), chain.ref(gas.object_id)),
        lambda: chain.sign(
            0, MergeCoins((chain.ref(a.object_id), b)), chain.ref(gas.object_id)
        ),  # deletes b
        lambda: chain.sign(
            validator, AddStake(stake_coin, BALANCE), validator_gas
        ),  # deletes the coin, moves the system state
        lambda: chain.sign(
            0, TransferCoin(b, 5, chain.addresses[1]), chain.ref(gas.object_id)
        ),  # consumed: a failure that still bumps the gas coin
        lambda: chain.sign(
            0,
            PayCoins((chain.ref(a.object_id),), (1, 2), tuple(chain.addresses[1:3])),
            chain.ref(gas.object_id),
        ),
        lambda: chain.sign(
            0,
            TransferCoin(chain.ref(a.object_id), 10 * BALANCE, chain.addresses[1]),
            chain.ref(gas.object_id),
        ),  # too much: fails
    ]
    every: list[TransactionEffects] = []
    for step in steps:
        tx = step()
        effects = chain.run(tx).effects
        every.append(effects)
        acc.apply_effects(effects)
        assert acc == accumulate(chain.store.live_refs())
    # Creates a coin, moves the system state (the stake left is the minimum).
    surplus = 1 + BALANCE - DEFAULT_PARAMETERS.min_validator_stake  # genesis stake is 1
    withdraw = chain.sign(validator, WithdrawStake(surplus), chain.ref(validator_gas.object_id))
    withdrawn = chain.run(withdraw).effects
    assert withdrawn.status.is_success() and len(withdrawn.created()) == 1
    acc.apply_effects(withdrawn)
    assert acc == accumulate(chain.store.live_refs())
    # All of them at once (as a commit is applied) gives the same accumulator, also
    # when the running sums are folded in every few elements.
    batched = StateAccumulator.from_bytes(stored)
    batched.apply_all([*every, chain.store.get_effects(withdraw.digest())])
    assert batched == acc
    monkeypatch.setattr(accumulator_module, "_SUM_LIMIT", 2)
    folded = StateAccumulator.from_bytes(stored)
    folded.apply_all([*every, chain.store.get_effects(withdraw.digest())])
    assert folded == acc


def test_effects_changes_pair_old_and_new_refs() -> None:
    chain = Chain(coins_per_account=3)
    a, b, gas = chain.coins(0)
    before = {r.object_id: r for r in chain.store.live_refs()}
    tx = chain.sign(0, PayCoins((a, b), (7,), (chain.addresses[1],)), gas)
    effects = chain.run(tx).effects
    after = {r.object_id: r for r in chain.store.live_refs()}
    pairs = list(effects_changes(effects))
    assert len(pairs) == len(effects.changed_objects) == 4
    created = ObjectID.derive(tx.digest(), 0)
    expected = {
        (before[a.object_id], after[a.object_id]),
        (before[b.object_id], None),
        (before[gas.object_id], after[gas.object_id]),
        (None, after[created]),
    }
    assert set(pairs) == expected


async def test_authority_state_roots_equal_the_accumulator_of_the_live_set() -> None:
    net = LocalValidators(
        cache_bounds=[(1, 1), (10_000, 100_000)], size=2, accounts=3, coins_per_account=3
    )
    try:
        await net.start()
        states = net.live()
        first = states[0]
        for state in states:
            assert state.state_root() == accumulate(state.live_refs()).root()
        roots: list[bytes] = []
        for round_ in range(3):
            txs = []
            for account in range(3):
                coins = first.owned_objects(net.addresses[account])
                coin, gas = coins[0], coins[-1]
                to = net.addresses[(account + 1) % 3]
                txs.append(net.sign(account, SplitCoin(coin, (10 + round_, 3)), gas))
                # The same coin again (a conflict: fails) and a plain transfer.
                if len(coins) > 2:
                    txs.append(net.sign(account, TransferCoin(coin, 1, to), coins[1]))
            await net.order(txs)
            index = first.last_consensus_commit()
            for state in states:
                assert state.accumulated_commit == index
                root = accumulate(state.live_refs()).root()
                assert state.state_root() == root
                assert state.state_root(index) == root
            latest = first.state_root()
            assert latest is not None
            roots.append(latest)
        assert len(set(roots)) == 3
        # Earlier commits' roots stay readable, and both validators agree on them.
        for index, root in enumerate(roots, start=1):
            assert {s.state_root(index) for s in states} == {root}
        assert not net.failures()
    finally:
        await net.stop()
        net.close()
