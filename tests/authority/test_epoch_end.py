"""The end of an epoch among in-process validators with consensus.

- The epoch closes at the first commit past its end time; each validator then refuses
  user transactions (EPOCH_ENDING) and sends its end-of-publish; the commit that
  counts 2f+1 stake of them is the epoch's last on every validator.
- Every validator computes the same epoch change: the same last commit, the same
  summary (next committee, start time, final state root), certified.
- The fees of the epoch are paid to the validators: the supply is conserved exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from soma.authority.errors import EpochEndedError
from soma.authority.state import AuthorityState
from soma.authority.supply import genesis_supply
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemState
from soma.types.transaction import ChangeEpoch, TransferCoin
from tests.authority.network import TIMEOUT_S, TestNetwork

#: Epoch 0 (which starts at genesis) ends this long after the test starts.
EPOCH_MS = 3_000


async def _epoch_done(net: TestNetwork) -> list[AuthorityState]:
    states = net.live()
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(*(s.wait_epoch_done() for s in states))
    return states


async def test_every_validator_computes_the_same_epoch_change() -> None:
    parameters = dataclasses.replace(DEFAULT_PARAMETERS, epoch_duration_ms=EPOCH_MS)
    net = TestNetwork(size=4, accounts=4, parameters=parameters)
    end_ms = net.genesis_start_ms + EPOCH_MS
    await net.start()
    try:
        recipient = net.addresses[3]
        fees = 0
        for account in range(3):
            gas = net.coin_ref(net.genesis_coin_ids[account])
            tx = net.sign(account, TransferCoin(gas, 1_000, recipient), gas)
            certificate = await net.execute(tx)
            assert certificate.data.status.is_success()
            fees += certificate.data.gas_used
        states = await _epoch_done(net)

        # One last commit, one epoch change, one summary, everywhere.
        lasts = {s.last_commit for s in states}
        assert len(lasts) == 1 and None not in lasts
        summaries = {
            s.store.summaries.summary(s.commit_offset + s.last_commit)  # type: ignore[operator]
            for s in states
        }
        assert len(summaries) == 1
        summary = summaries.pop()
        assert summary is not None and summary.end_of_epoch is not None
        end = summary.end_of_epoch
        assert end.next_committee.epoch == 1
        assert end.next_committee.names() == net.committee.names()
        assert end.final_state_root == summary.state_root
        assert end.next_epoch_start_timestamp_ms == summary.timestamp_ms >= end_ms
        certified = states[0].store.summaries.certified_summary(summary.index)
        assert certified is not None and certified.data == summary

        # The commit's transactions end with the epoch change, executed everywhere.
        ordered = states[0].epoch_store.commit_transactions(states[0].last_commit or 0)
        assert ordered is not None
        change = states[0].get_transaction(ordered.digests[-1])
        assert change is not None and isinstance(change.data.kind, ChangeEpoch)
        assert change.data.kind.epoch == 1
        for state in states:
            effects = state.get_effects(ordered.digests[-1])
            assert effects is not None and effects.status.is_success()
            system = state.get_object(SYSTEM_STATE_OBJECT_ID)
            assert system is not None
            next_state = SystemState.from_object(system)
            assert next_state.epoch == 1
            assert state.next_epoch_start().committee() == end.next_committee

            # The fees were paid out: supply conserved exactly, nothing pending.
            supply = state.supply()
            assert supply.pending_fees == 0
            assert supply.total == genesis_supply(net.genesis)
        assert fees > 0

        # The closed epoch takes no user transaction (retryable refusals).
        gas = net.coin_ref(net.genesis_coin_ids[0])
        late = net.sign(0, TransferCoin(gas, 5, recipient), gas)
        for state in states:
            with pytest.raises(EpochEndedError) as refused:
                await state.submit(late)
            assert refused.value.code in ("EPOCH_ENDED", "EPOCH_ENDING")
    finally:
        await net.stop()
        net.close()
    assert net.failures() == []
