"""ConsensusProtocol: bytes in, messages out. Bad input from a peer is counted against
it and dropped, never raised; pushes, fetches and subscriptions work end to end."""

from __future__ import annotations

import random

import pytest

from soma.consensus.context import Context
from soma.consensus.local_committee import build_committee
from soma.consensus.messages import (
    BlockPush,
    ConsensusMessage,
    FetchBlocksRequest,
    FetchBlocksResponse,
    SubscribeRequest,
)
from soma.consensus.protocol import ConsensusProtocol, Outgoing
from soma.consensus.store import ConsensusStore
from soma.consensus.transaction import TransactionQueue
from soma.types.consensus.block import Block, SignedBlock
from soma.types.crypto import ProtocolKeyPair


class Net:
    """Four protocols with instant, in-order delivery through their byte interfaces."""

    def __init__(self, size: int = 4) -> None:
        self.committee, self.keys = build_committee(size, seed=5)
        self.stores = [ConsensusStore.open_memory() for _ in range(size)]
        self.nodes = [self._make(i, 0) for i in range(size)]
        self.now = 0
        self.down: set[int] = set()
        self.queue: list[tuple[int, int | None, ConsensusMessage]] = []

    def _make(self, i: int, now: int) -> ConsensusProtocol:
        context = Context(self.committee, i)
        return ConsensusProtocol(
            context, self.stores[i], self.keys[i], TransactionQueue(), random.Random(i), now
        )

    def restart(self, i: int) -> None:
        self.nodes[i] = self._make(i, self.now)
        self.enqueue(i, self.nodes[i].start(self.now))

    def enqueue(self, sender: int, out: Outgoing) -> None:
        for peer, message in out.sends:
            self.queue.append((sender, peer, message))

    def deliver(self) -> None:
        while self.queue:
            sender, peer, message = self.queue.pop(0)
            if sender in self.down:
                continue
            targets = [p for p in range(len(self.nodes)) if p != sender] if peer is None else [peer]
            for target in targets:
                if target in self.down:
                    continue
                out = self.nodes[target].handle(sender, message.to_bytes(), self.now)
                self.enqueue(target, out)

    def run(self, ms: int, step: int = 10) -> None:
        end = self.now + ms
        while self.now < end:
            self.now += step
            for i, node in enumerate(self.nodes):
                if i not in self.down:
                    self.enqueue(i, node.tick(self.now))
            self.deliver()


def test_network_makes_progress_and_agrees() -> None:
    net = Net()
    for i, node in enumerate(net.nodes):
        net.enqueue(i, node.start(0))
    net.run(3_000)
    commits = [node.dag.last_commit_index for node in net.nodes]
    assert min(commits) >= 20
    digests = [
        [c.digest() for c in node.dag.store.scan_commits(1, min(commits))] for node in net.nodes
    ]
    assert all(d == digests[0] for d in digests)
    assert all(not node.bad_messages for node in net.nodes)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\xff" * 40, b"\x01\x05", BlockPush(b"not a block").to_bytes()],
)
def test_garbage_is_counted_and_dropped(data: bytes) -> None:
    net = Net()
    node = net.nodes[0]
    out = node.handle(2, data, 0)
    assert out.sends == [] and out.committed == []
    assert node.bad_messages[2] == 1


def test_senders_outside_committee_or_self_are_ignored() -> None:
    net = Net()
    node = net.nodes[0]
    for sender in (-1, 0, 4, 1000):
        assert node.handle(sender, b"\xff", 0).sends == []
    assert sum(node.bad_messages.values()) == 0


def _block(net: Net, author: int, key: ProtocolKeyPair, round: int = 1) -> SignedBlock:
    genesis = net.nodes[0].dag.blocks_at_round(0)
    ancestors = [g.reference() for g in genesis]
    ancestors.sort(key=lambda r: r.author != author)
    unsigned = Block(0, round, author, 0, tuple(ancestors), (), ())
    return SignedBlock.sign(unsigned, key)


def test_pushing_someone_elses_block_is_refused() -> None:
    net = Net()
    node = net.nodes[0]
    block = _block(net, 3, net.keys[3])
    node.handle(2, BlockPush(block.to_bytes()).to_bytes(), 0)
    assert node.bad_messages[2] == 1
    assert not node.dag.contains(block.reference())
    # The author itself may push it.
    node.handle(3, BlockPush(block.to_bytes()).to_bytes(), 0)
    assert node.dag.contains(block.reference())
    assert node.bad_messages[3] == 0


def test_bad_signature_is_refused() -> None:
    net = Net()
    node = net.nodes[0]
    forged = _block(net, 2, net.keys[1])  # signed with another validator's key
    node.handle(2, BlockPush(forged.to_bytes()).to_bytes(), 0)
    assert node.bad_messages[2] == 1
    assert not node.dag.contains(forged.reference())


def test_fetch_response_with_bad_blocks_counts_each() -> None:
    net = Net()
    node = net.nodes[0]
    good = _block(net, 3, net.keys[3])
    bad = _block(net, 2, net.keys[1])
    response = FetchBlocksResponse(7, (good.to_bytes(), b"junk", bad.to_bytes()))
    node.handle(1, response.to_bytes(), 0)
    # Fetched blocks may be anyone's; the good one is kept, the two bad ones counted.
    assert node.dag.contains(good.reference())
    assert node.bad_messages[1] == 2


def test_fetch_request_is_answered_with_blocks() -> None:
    net = Net()
    for i, node in enumerate(net.nodes):
        net.enqueue(i, node.start(0))
    net.run(500)
    server = net.nodes[1]
    tip = server.dag.last_block_of(2).reference()
    request = FetchBlocksRequest(42, (tip,), (0, 0, 0, 0))
    out = server.handle(3, request.to_bytes(), net.now)
    [(peer, response)] = out.sends
    assert peer == 3
    assert isinstance(response, FetchBlocksResponse)
    assert response.request_id == 42
    refs = [SignedBlock.from_bytes(b).reference() for b in response.blocks]
    assert tip in refs


def test_subscribe_resends_own_blocks_after_round() -> None:
    net = Net()
    for i, node in enumerate(net.nodes):
        net.enqueue(i, node.start(0))
    net.run(500)
    server = net.nodes[2]
    out = server.handle(0, SubscribeRequest(3).to_bytes(), net.now)
    pushed = [SignedBlock.from_bytes(m.block) for _, m in out.sends if isinstance(m, BlockPush)]
    assert pushed
    assert all(b.author == 2 and b.round > 3 for b in pushed)
    assert [b.round for b in pushed] == sorted(b.round for b in pushed)
    assert pushed[-1] == server.dag.last_block_of(2)


def test_restarted_node_catches_up_and_agrees() -> None:
    net = Net()
    for i, node in enumerate(net.nodes):
        net.enqueue(i, node.start(0))
    net.run(1_000)
    net.down.add(3)
    net.run(2_000)
    behind = net.nodes[3].dag.last_commit_index
    net.down.clear()
    net.restart(3)
    net.run(2_000)
    caught_up = net.nodes[3].dag.last_commit_index
    assert caught_up > behind + 10
    others = min(node.dag.last_commit_index for node in net.nodes[:3])
    upto = min(caught_up, others)
    digests = [[c.digest() for c in node.dag.store.scan_commits(1, upto)] for node in net.nodes]
    assert all(d == digests[0] for d in digests)
