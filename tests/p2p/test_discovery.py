"""Discovery between real P2P services on 127.0.0.1: nodes that each know one seed
learn everyone within a bounded number of rounds; validators know the committee from
the start and fullnodes learn them and each other; a node answering garbage is dropped.

Rounds run every few milliseconds (`interval_ms`); every wait is for a condition, with a
generous deadline, never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Sequence

from soma.consensus.local_committee import free_ports
from soma.consensus.network.server import now_ms
from soma.p2p import wire
from soma.p2p.node_info import SignedNodeInfo
from soma.p2p.parameters import DiscoveryParameters
from soma.p2p.server import P2pServer
from soma.p2p.service import P2pService
from soma.types.bcs import BcsStruct
from soma.types.config import SeedPeer
from soma.types.crypto import Ed25519PublicKey, NetworkKeyPair
from soma.types.tls import tls_identity

FAST = DiscoveryParameters(interval_ms=20, call_timeout_ms=2_000)
DEADLINE_S = 60.0
#: Rounds any node may take to learn everyone (a chain of 8 takes a handful).
MAX_ROUNDS = 40


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


def node(
    index: int,
    port: int,
    seeds: Sequence[SeedPeer] = (),
    committee: dict[Ed25519PublicKey, str] | None = None,
) -> P2pService:
    return P2pService(
        NetworkKeyPair(bytes([index + 1]) * 32),
        f"127.0.0.1:{port}",
        committee=committee,
        seeds=seeds,
        parameters=FAST,
        rng=random.Random(index),
    )


@contextlib.asynccontextmanager
async def running(nodes: Sequence[P2pService]) -> AsyncIterator[None]:
    started = []
    for n in nodes:
        tls_identity(n.key)  # derived (and cached) before any starts: starts stay quick
    try:
        for n in nodes:
            await n.start()
            started.append(n)
        yield
    finally:
        for n in started:
            await n.stop()


def knows(n: P2pService, others: Sequence[P2pService]) -> bool:
    """`n` holds a signed info of every other node (not only a committee entry)."""
    held = {p.peer_id for p in n.peers() if p.timestamp_ms is not None}
    return {o.peer_id for o in others if o is not n} <= held


def rounds(n: P2pService) -> int:
    assert n.discovery is not None
    return n.discovery.rounds


async def test_a_chain_of_single_seeds_learns_everyone() -> None:
    size = 8
    ports = free_ports(size)
    nodes = [
        node(i, ports[i], seeds=[SeedPeer(f"127.0.0.1:{ports[(i + 1) % size]}")])
        for i in range(size)
    ]
    async with running(nodes):
        # Counted from when every node listens: rounds run while the others still start
        # (slower on a busy machine) find nobody to ask, and say nothing of the protocol.
        started = [rounds(n) for n in nodes]
        await wait_for(lambda: all(knows(n, nodes) for n in nodes), "everyone knows everyone")
        assert max(rounds(n) - r for n, r in zip(nodes, started, strict=True)) <= MAX_ROUNDS
        for n in nodes:
            listed = {p.peer_id: p.addresses for p in n.peers()}
            for other in nodes:
                if other is not n:
                    assert listed[other.peer_id] == (other.address,)
    assert all(n.discovery is not None and n.discovery._task is None for n in nodes)


async def test_fullnodes_with_one_seed_learn_every_validator_and_each_other() -> None:
    ports = free_ports(6)
    validator_keys = [NetworkKeyPair(bytes([i + 1]) * 32) for i in range(4)]
    committee = {
        k.public_key: f"127.0.0.1:{p}" for k, p in zip(validator_keys, ports, strict=False)
    }
    validators = [node(i, ports[i], committee=committee) for i in range(4)]
    first = next(iter(committee.items()))
    seed = [SeedPeer(first[1], first[0])]
    fullnodes = [node(4 + i, ports[4 + i], seeds=seed) for i in range(2)]
    everyone = validators + fullnodes
    async with running(everyone):
        # Validators list the whole committee whether they heard from it or not.
        listed = {p.peer_id for p in validators[0].peers() if p.committee}
        assert listed == {v.peer_id for v in validators[1:]}
        await wait_for(lambda: all(knows(n, everyone) for n in everyone), "all learn all")
        assert max(rounds(n) for n in everyone) <= MAX_ROUNDS
        for f in fullnodes:
            committee_flags = {p.peer_id: p.committee for p in f.peers()}
            assert not any(committee_flags.values())  # a fullnode has no committee
        flags = {p.peer_id: p.committee for p in validators[0].peers()}
        assert flags[validators[1].peer_id] and not flags[fullnodes[0].peer_id]


class Garbage(BcsStruct):
    data: bytes


async def test_a_node_answering_garbage_is_dropped() -> None:
    ports = free_ports(2)
    calls = 0

    async def garbage(request: wire.ExchangePeersRequest, host: str) -> Garbage:
        nonlocal calls
        calls += 1
        return Garbage(b"\xff" * 40)  # does not decode as an ExchangePeersResponse

    bad = P2pServer()
    bad.add_unary(wire.EXCHANGE_PEERS, wire.ExchangePeersRequest, garbage)
    bad_port = await bad.start("127.0.0.1:0", tls_identity(NetworkKeyPair.generate()))
    bad_address = f"127.0.0.1:{bad_port}"
    honest = node(1, ports[1])
    learner = node(0, ports[0], seeds=[SeedPeer(bad_address), SeedPeer(f"127.0.0.1:{ports[1]}")])
    try:
        async with running([honest, learner]):
            assert learner.discovery is not None
            table = learner.discovery.table
            await wait_for(
                lambda: calls > 0 and table.is_dropped(bad_address, now_ms()),
                "the garbage node is dropped",
            )
            await wait_for(lambda: knows(learner, [honest]), "the honest node is learnt")
            # Later rounds never call it again.
            seen, after = calls, rounds(learner)
            await wait_for(lambda: rounds(learner) >= after + 10, "ten more rounds")
            assert calls == seen
            assert all(bad_address not in p.addresses for p in learner.peers())
    finally:
        await bad.stop()


async def test_a_node_relaying_a_forged_info_is_dropped_and_nothing_it_sent_is_kept() -> None:
    ports = free_ports(2)
    forger_key = NetworkKeyPair(bytes([99]) * 32)
    victim = NetworkKeyPair(bytes([98]) * 32)
    forger_address = f"127.0.0.1:{ports[1]}"

    async def forge(request: wire.ExchangePeersRequest, host: str) -> wire.ExchangePeersResponse:
        now = now_ms()
        own = SignedNodeInfo.sign(forger_key, [forger_address], now)
        real = SignedNodeInfo.sign(victim, ["127.0.0.1:1"], now)
        # The victim's info pointed elsewhere, with the signature of the original.
        moved = dataclasses.replace(real.info, addresses=("10.0.0.1:1",))
        return wire.ExchangePeersResponse(own, (real, SignedNodeInfo(moved, real.signature)))

    forger = P2pServer()
    forger.add_unary(wire.EXCHANGE_PEERS, wire.ExchangePeersRequest, forge)
    await forger.start(forger_address, tls_identity(forger_key))
    learner = node(0, ports[0], seeds=[SeedPeer(forger_address, forger_key.public_key)])
    try:
        async with running([learner]):
            assert learner.discovery is not None
            table = learner.discovery.table
            await wait_for(
                lambda: table.is_dropped(forger_key.public_key, now_ms()), "forger dropped"
            )
            assert learner.peers() == []  # not even the victim's genuine info
    finally:
        await forger.stop()
