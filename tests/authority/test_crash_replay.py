"""A validator that crashes between consensus output and execution, or after executing
but before its outputs reached disk, replays on restart: every ordered transaction is
executed exactly once, to the effects the others computed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from soma.authority.epoch_store import PendingTransaction
from soma.authority.state import AuthorityState
from soma.types.digests import TransactionDigest
from soma.types.transaction import TransferCoin
from tests.authority.network import TIMEOUT_S, TestNetwork, all_fees, total_coin_supply

CRASHED = 3
TRANSFERS = 12


class OrdersButNeverExecutes(AuthorityState):
    """Consensus output is recorded in the epoch store; the execution driver never runs."""

    async def _drive(self) -> None:
        await asyncio.Event().wait()


class ExecutesButNeverFlushes(AuthorityState):
    """Executes into the write-back cache, but its outputs never reach the store."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.cache.flush = lambda: []  # type: ignore[method-assign]


class CountsExecutions(AuthorityState):
    """Records every transaction it actually executes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ran: list[TransactionDigest] = []

    def _execute(self, item: PendingTransaction) -> None:
        digest = item.transaction.digest()
        if not self.cache.is_executed(digest):
            self.ran.append(digest)
        super()._execute(item)


async def transfers(net: TestNetwork) -> list[TransactionDigest]:
    """Transfers certified by validators 0-2 (a quorum without the crashing one)."""
    state = net.live()[0]
    digests = []
    gas = {a: state.owned_objects(net.addresses[a])[0] for a in range(4)}
    for i in range(TRANSFERS):
        sender = i % 4
        tx = net.sign(
            sender, TransferCoin(gas[sender], 100 + i, net.addresses[(i + 1) % 4]), gas[sender]
        )
        certificate = await net.execute(tx, via=[i % 3])
        assert certificate.data.status.is_success()
        new_gas = certificate.data.gas_object()
        assert new_gas is not None
        gas[sender] = new_gas
        digests.append(tx.digest())
    return digests


@pytest.mark.parametrize("broken", [OrdersButNeverExecutes, ExecutesButNeverFlushes])
async def test_crash_between_ordering_and_storing_outputs_replays_once(
    tmp_path: Path, broken: type[AuthorityState]
) -> None:
    net = TestNetwork(size=4, accounts=4, path=tmp_path)
    net.state_factory[CRASHED] = broken
    try:
        await net.start()
        digests = await transfers(net)
        crashed = net.validators[CRASHED].state
        assert crashed is not None
        async with asyncio.timeout(TIMEOUT_S):
            while not all(crashed.epoch_store.is_processed(d) for d in digests):
                await asyncio.sleep(0.05)
        if broken is ExecutesButNeverFlushes:
            async with asyncio.timeout(TIMEOUT_S):
                while not all(crashed.cache.is_executed(d) for d in digests):
                    await asyncio.sleep(0.05)
        assert not any(crashed.store.get_effects(d) for d in digests)
        ordered = crashed.last_consensus_commit()
        await net.crash_validator(CRASHED)

        net.state_factory[CRASHED] = CountsExecutions
        await net.start_validator(CRASHED)
        restarted = net.validators[CRASHED].state
        assert isinstance(restarted, CountsExecutions)
        # The watermark survived: consensus replays only what came after it.
        assert restarted.last_consensus_commit() >= ordered
        for digest in digests:
            effects = await net.wait_all_executed(digest)
            assert len({e.digest() for e in effects}) == 1
        await net.settle()
        # Each of those transactions ran exactly once here, after the restart.
        user_digests = set(digests)
        ran = [d for d in restarted.ran if d in user_digests]
        assert sorted(ran) == sorted(user_digests)
        for state in net.live():
            assert total_coin_supply(state) + all_fees(state) == net.initial_supply
        assert len({s.state_root() for s in net.live()}) == 1
        live = [s.live_refs() for s in net.live()]
        assert all(refs == live[0] for refs in live)

        # A second restart finds nothing left to execute.
        before = {d: restarted.store.get_effects(d) for d in digests}
        await net.stop_validator(CRASHED)
        await net.start_validator(CRASHED)
        again = net.validators[CRASHED].state
        assert isinstance(again, CountsExecutions)
        await asyncio.sleep(0.5)
        assert not user_digests & set(again.ran)
        assert {d: again.store.get_effects(d) for d in digests} == before
        assert not net.failures()
    finally:
        await net.stop()
        net.close()
