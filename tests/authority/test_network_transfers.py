"""Acceptance: four validators in this process, over gRPC, execute 1,000 random
transfers among 20 accounts and end with the same live objects and state roots, with
the coin supply conserved."""

from __future__ import annotations

import asyncio
import random

from soma.types.transaction import TransferCoin
from tests.authority.network import TestNetwork, all_fees, total_coin_supply

TRANSFERS = 1_000
ACCOUNTS = 20


async def test_thousand_random_transfers_agree_everywhere() -> None:
    net = TestNetwork(size=4, accounts=ACCOUNTS)
    rng = random.Random(11)
    try:
        await net.start()
        gas = {i: net.coin_ref(net.genesis_coin_ids[i]) for i in range(ACCOUNTS)}
        per_account = TRANSFERS // ACCOUNTS
        succeeded = 0

        async def run_account(sender: int) -> None:
            nonlocal succeeded
            for _ in range(per_account):
                recipient = rng.randrange(ACCOUNTS)
                amount = rng.randint(1, 10_000)
                kind = TransferCoin(gas[sender], amount, net.addresses[recipient])
                tx = net.sign(sender, kind, gas[sender])
                via = [rng.randrange(net.size)]
                certificate = await net.execute(tx, via=via)
                effects = certificate.data
                assert effects.status.is_success(), effects.status
                new_gas = effects.gas_object()
                assert new_gas is not None
                gas[sender] = new_gas
                succeeded += 1

        await asyncio.gather(*(run_account(i) for i in range(ACCOUNTS)))
        assert succeeded == TRANSFERS
        await net.settle()
        states = net.live()
        live_sets = [s.live_refs() for s in states]
        assert all(refs == live_sets[0] for refs in live_sets)
        roots = {s.state_root() for s in states}
        assert len(roots) == 1
        for state in states:
            assert total_coin_supply(state) + all_fees(state) == net.initial_supply
            assert state.executed_count >= TRANSFERS
        assert not net.failures()
    finally:
        await net.stop()
        net.close()
