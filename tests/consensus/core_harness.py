"""A few Cores wired together in-process with instant delivery, for unit tests of the
Core, DagState recovery and the protocol. Time is passed explicitly."""

from __future__ import annotations

import dataclasses

from soma.consensus.context import Context
from soma.consensus.core import Core, CoreOutput
from soma.consensus.dag_state import DagState
from soma.consensus.local_committee import build_committee
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.consensus.transaction import TransactionQueue
from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock
from soma.types.consensus.commit import CommittedSubDag
from soma.types.crypto import ProtocolKeyPair


@dataclasses.dataclass
class Node:
    context: Context
    store: ConsensusStore
    key: ProtocolKeyPair
    queue: TransactionQueue
    core: Core
    committed: list[CommittedSubDag] = dataclasses.field(default_factory=list)
    proposed: list[SignedBlock] = dataclasses.field(default_factory=list)

    def record(self, out: CoreOutput) -> CoreOutput:
        self.committed += out.committed
        self.proposed += out.proposed
        return out

    def restart(self, now_ms: int) -> None:
        """Rebuild the Core from what this node's store holds (a crash and restart)."""
        dag = DagState(self.context, self.store)
        self.core = Core(self.context, dag, self.key, self.queue, now_ms)


class Cluster:
    def __init__(self, size: int = 4, parameters: ConsensusParameters | None = None) -> None:
        self.parameters = parameters or ConsensusParameters()
        self.committee: Committee
        self.committee, keys = build_committee(size, seed=11)
        self.nodes: list[Node] = []
        for i in range(size):
            context = Context(self.committee, i, self.parameters)
            store = ConsensusStore.open_memory()
            queue = TransactionQueue()
            core = Core(context, DagState(context, store), keys[i], queue, 0)
            self.nodes.append(Node(context, store, keys[i], queue, core))
        self.now_ms = 0
        self._in_flight: list[SignedBlock] = []

    def step(self, dt_ms: int, down: frozenset[int] = frozenset()) -> list[SignedBlock]:
        """Advance time; deliver the blocks proposed in the previous step to every other
        live node, then let every live node tick. Returns the blocks proposed in this
        step (delivered at the next)."""
        self.now_ms += dt_ms
        live = [n for i, n in enumerate(self.nodes) if i not in down]
        in_flight, self._in_flight = self._in_flight, []
        proposed: list[SignedBlock] = []
        for node in live:
            incoming = [b for b in in_flight if b.author != node.context.own_index]
            if incoming:
                proposed += node.record(node.core.add_blocks(incoming, self.now_ms)).proposed
            proposed += node.record(node.core.tick(self.now_ms)).proposed
        self._in_flight = proposed
        return proposed

    def run_until_round(
        self, round: int, dt_ms: int = 60, down: frozenset[int] = frozenset()
    ) -> None:
        live = [n for i, n in enumerate(self.nodes) if i not in down]
        for _ in range(round * 20):
            if min(n.core.last_proposed_round for n in live) >= round:
                return
            self.step(dt_ms, down)
        raise AssertionError(f"did not reach round {round}")


def commit_digests(node: Node) -> list[bytes]:
    return [bytes(s.commit.digest()) for s in node.committed]
