"""The validator service's reads for observers, over real gRPC in front of a
TestNetwork (real consensus): GetRecentDag answers the last rounds' blocks of every
authority and the leader decisions, committed leaders naming the global commit whose
consensus commit GetCommits gives back; GetCommits records executed commits (counts,
timestamps, with detail the transactions and consensus commit, checked against the
summaries); bad requests and a validator without consensus get typed refusals."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from soma.authority import service_wire as wire
from soma.authority.service import ValidatorService
from soma.authority.service_client import RemoteError, ValidatorClient
from soma.authority.state import AuthorityState
from soma.consensus.core import Core
from soma.types.tls import tls_identity
from soma.types.transaction import TransferCoin
from tests.authority.network import TestNetwork, Validator

#: Liveness bound of every wait here (never a performance assertion).
LIVENESS_S = 60.0


@dataclasses.dataclass
class Served:
    net: TestNetwork
    #: Validator 0's service, and the same validator's service with no consensus.
    client: ValidatorClient
    without_consensus: ValidatorClient

    def state(self) -> AuthorityState:
        state = self.net.validators[0].state
        assert state is not None
        return state


def _core(v: Validator) -> Core | None:
    return None if v.consensus is None else v.consensus.protocol.core


def _state(v: Validator) -> AuthorityState:
    assert v.state is not None
    return v.state


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    net = TestNetwork(size=4, accounts=4)
    services: list[ValidatorService] = []
    clients: list[ValidatorClient] = []
    try:
        await net.start()
        v = net.validators[0]
        certificate = net.committee.members[0].tls_certificate
        for consensus in (lambda: _core(v), lambda: None):
            service = ValidatorService(lambda: _state(v), tls_identity(v.keys.network), consensus)
            port = service.bind("127.0.0.1:0")
            await service.start()
            services.append(service)
            clients.append(ValidatorClient(f"127.0.0.1:{port}", certificate))
        gas = net.coin_ref(net.genesis_coin_ids[0])
        tx = net.sign(0, TransferCoin(gas, 5, net.addresses[1]), gas)
        await net.execute(tx, via=[0])
        await net.wait_all_executed(tx.digest())
        yield Served(net, clients[0], clients[1])
    finally:
        for client in clients:
            await client.close()
        for service in services:
            await service.stop(0)
        await net.stop()
        net.close()


async def _dag_with_commits(served: Served, rounds: int) -> wire.GetRecentDagResponse:
    """A DAG answer once its rounds hold a committed leader that was executed here."""
    async with asyncio.timeout(LIVENESS_S):
        while True:
            dag = await served.client.get_recent_dag(rounds)
            executed = served.state().executed_commit
            if any(
                leader.state is wire.LeaderState.COMMITTED
                and leader.commit_index is not None
                and leader.commit_index <= executed
                for leader in dag.leaders
            ):
                return dag
            await asyncio.sleep(0.1)


async def test_the_recent_dag_has_every_authority_and_its_committed_leaders(
    served: Served,
) -> None:
    dag = await _dag_with_commits(served, 10)
    committee = served.net.committee
    assert dag.epoch == committee.epoch
    assert [a.name for a in dag.authorities] == committee.names()
    assert [a.stake for a in dag.authorities] == [m.stake for m in committee.members]
    assert 0 < dag.highest_round - dag.low_round < 10
    assert {b.reference.author for b in dag.blocks} == {0, 1, 2, 3}
    assert all(dag.low_round <= b.reference.round <= dag.highest_round for b in dag.blocks)
    keys = [b.reference.sort_key() for b in dag.blocks]
    assert keys == sorted(keys)
    committed = [
        leader
        for leader in dag.leaders
        if leader.state is wire.LeaderState.COMMITTED
        and leader.commit_index is not None
        and leader.commit_index <= served.state().executed_commit
    ]
    for leader in committed:
        assert leader.block is not None and leader.block.author == leader.authority
        assert leader.decided_by in (wire.DecidedBy.DIRECT, wire.DecidedBy.INDIRECT)
        assert leader.commit_index is not None
        (record,) = await served.client.get_commits(leader.commit_index, 1, detail=True)
        assert record.commit is not None and record.commit.leader == leader.block
    undecided = [leader for leader in dag.leaders if leader.state is wire.LeaderState.UNDECIDED]
    assert all(leader.decided_by is None and leader.block is None for leader in undecided)


async def test_bad_dag_requests_and_no_consensus_are_refused_by_code(served: Served) -> None:
    for rounds in (0, wire.MAX_DAG_ROUNDS + 1):
        with pytest.raises(RemoteError) as refused:
            await served.client.get_recent_dag(rounds)
        assert refused.value.remote_code == "INVALID_DAG_ROUNDS"
    with pytest.raises(RemoteError) as refused:
        await served.without_consensus.get_recent_dag(5)
    assert refused.value.remote_code == "CONSENSUS_UNAVAILABLE"


async def test_commit_records_follow_the_summaries(served: Served) -> None:
    state = served.state()
    executed = state.executed_commit
    records = await served.client.get_commits(0, wire.MAX_COMMITS)
    assert [r.index for r in records] == list(range(executed + 1))
    summaries = state.store.summaries
    for record in records:
        summary = summaries.summary(record.index)
        digests = summaries.contents_digests(record.index)
        assert summary is not None and digests is not None
        assert (record.epoch, record.timestamp_ms) == (summary.epoch, summary.timestamp_ms)
        assert record.transactions == len(digests) and record.digests == ()
        assert record.commit is None
    assert sum(r.user_transactions for r in records) == 1
    assert records[0].user_transactions == 0  # genesis
    detailed = await served.client.get_commits(1, min(executed, wire.MAX_DETAILED_COMMITS), True)
    assert detailed
    for record in detailed:
        summary = summaries.summary(record.index)
        assert summary is not None
        assert record.digests == summaries.contents_digests(record.index)
        assert record.commit is not None and record.commit.digest() == summary.commit_digest
    # With no consensus, the records are the same but carry no consensus commit.
    plain = await served.without_consensus.get_commits(1, len(detailed), True)
    assert [r.digests for r in plain] == [r.digests for r in detailed]
    assert all(r.commit is None for r in plain)
    for count, detail in ((0, False), (wire.MAX_COMMITS + 1, False), (51, True)):
        with pytest.raises(RemoteError) as refused:
            await served.client.get_commits(1, count, detail)
        assert refused.value.remote_code == "INVALID_COMMIT_RANGE"
    assert await served.client.get_commits(executed + 1, 10) == []
