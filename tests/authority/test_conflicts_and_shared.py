"""Over four validators with consensus: conflicting spends of one coin submitted to
different validators (exactly one succeeds, everywhere), and transactions on the shared
system state submitted to several validators (each executed once, in consensus order,
with identical effects)."""

from __future__ import annotations

import asyncio

from soma.types.effects import ExecutionFailure, InputObjectConsumed
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemState
from soma.types.transaction import TransferCoin
from tests.authority.execution.helpers import add_validator
from tests.authority.network import TestNetwork, all_fees, total_coin_supply


async def test_conflicting_transfers_of_one_coin_only_one_succeeds() -> None:
    net = TestNetwork(size=4, accounts=4, coins_per_account=3)
    try:
        await net.start()
        state = net.live()[0]
        # Account 0: the coin both transactions spend, and a gas coin for each.
        coin, gas_a, gas_b = state.owned_objects(net.addresses[0])
        amount = 12_345
        tx_a = net.sign(0, TransferCoin(coin, amount, net.addresses[1]), gas_a)
        tx_b = net.sign(0, TransferCoin(coin, amount, net.addresses[2]), gas_b)
        # Account 3 spends one coin that is also the gas of both: the loser cannot pay.
        own = state.owned_objects(net.addresses[3])[0]
        tx_c = net.sign(3, TransferCoin(own, 5, net.addresses[1]), own)
        tx_d = net.sign(3, TransferCoin(own, 6, net.addresses[2]), own)
        certs = await asyncio.gather(
            net.execute(tx_a, via=[0]),
            net.execute(tx_b, via=[1]),
            net.execute(tx_c, via=[2]),
            net.execute(tx_d, via=[3]),
        )
        by_digest = {c.data.transaction_digest: c.data for c in certs}
        spends = [by_digest[tx_a.digest()], by_digest[tx_b.digest()]]
        assert sorted(e.status.is_success() for e in spends) == [False, True]
        loser = next(e for e in spends if not e.status.is_success())
        assert isinstance(loser.status, ExecutionFailure)
        assert loser.status.error == InputObjectConsumed(coin.object_id, coin.version)
        # The loser paid its fee from its own gas coin and touched nothing else.
        assert loser.gas_used > 0
        assert {c.object_id for c in loser.mutated()} == {loser.gas_object().object_id}  # type: ignore[union-attr]
        unpaid = [by_digest[tx_c.digest()], by_digest[tx_d.digest()]]
        assert sorted(e.status.is_success() for e in unpaid) == [False, True]
        unpaid_loser = next(e for e in unpaid if not e.status.is_success())
        assert unpaid_loser.status == ExecutionFailure(
            InputObjectConsumed(own.object_id, own.version)
        )
        assert unpaid_loser.changed_objects == () and unpaid_loser.gas_used == 0
        for digest in (tx_a.digest(), tx_b.digest(), tx_c.digest(), tx_d.digest()):
            effects = await net.wait_all_executed(digest)
            assert len({e.digest() for e in effects}) == 1
        await net.settle()
        for s in net.live():
            assert total_coin_supply(s) + all_fees(s) == net.initial_supply
            # The coin was spent exactly once: one new coin of `amount` exists.
            received = [
                s.get_object(r.object_id)
                for a in net.addresses[1:3]
                for r in s.owned_objects(a)
                if s.get_object(r.object_id).coin_balance() == amount  # type: ignore[union-attr]
            ]
            assert len(received) == 1
        assert len({s.state_root() for s in net.live()}) == 1
        assert not net.failures()
    finally:
        await net.stop()
        net.close()


async def test_shared_object_transaction_executes_once_in_consensus_order() -> None:
    net = TestNetwork(size=4, accounts=4, coins_per_account=2)
    try:
        await net.start()
        state = net.live()[0]
        stakes = {net.addresses[a]: DEFAULT_PARAMETERS.min_validator_stake + a for a in range(4)}
        txs = []
        for account in range(4):
            address = net.addresses[account]
            stake_coin, gas = state.owned_objects(address)
            kind = add_validator(address, stake_coin, stakes[address], seed=20 + account)
            txs.append(net.sign(account, kind, gas))
        # Each submitted to every validator at once.
        certs = await asyncio.gather(*(net.execute(tx) for tx in txs))
        assert all(c.data.status.is_success() for c in certs)
        versions = []
        for tx in txs:
            effects = await net.wait_all_executed(tx.digest())
            assert len({e.digest() for e in effects}) == 1
            versions.append(effects[0].lamport_version)
        # One version of the system state per transaction: none executed twice.
        assert len(set(versions)) == len(txs)
        await net.settle()
        for s in net.live():
            assert s.executed_count == len({*s.store.executed.keys()}) - 1  # genesis
            system = s.get_object(SYSTEM_STATE_OBJECT_ID)
            assert system is not None
            data = SystemState.from_object(system)
            joined = {
                v.metadata.soma_address: v.next_epoch_stake for v in data.validators.pending_active
            }
            assert joined == stakes
            assert system.version == max(versions)
            assert total_coin_supply(s) + all_fees(s) == net.initial_supply
        assert len({s.state_root() for s in net.live()}) == 1
        assert not net.failures()
    finally:
        await net.stop()
        net.close()
