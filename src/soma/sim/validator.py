"""One simulated validator: a real `ConsensusProtocol` on the simulated network.

Its store (an in-memory database standing for the disk) survives a crash; everything
else is rebuilt from it on restart, exactly as a real restart would. Byzantine
behaviours are done by rewriting what the node sends, never by changing the protocol
code honest nodes run.
"""

from __future__ import annotations

import enum
import random

from soma.consensus.context import Context
from soma.consensus.messages import BlockPush, ConsensusMessage
from soma.consensus.protocol import ConsensusProtocol, Outgoing
from soma.consensus.store import ConsensusStore
from soma.consensus.transaction import TransactionQueue
from soma.sim.network import SimNetwork
from soma.sim.scheduler import Scheduler
from soma.types.consensus.block import Block, BlockRef, SignedBlock
from soma.types.consensus.commit import Commit
from soma.types.crypto import Ed25519Signature, ProtocolKeyPair
from soma.types.digests import BlockDigest


class Behaviour(enum.Enum):
    HONEST = "honest"
    #: Signs two different blocks per round and sends one to each half of its peers.
    EQUIVOCATE = "equivocate"
    #: Proposes but sends none of its blocks to anyone.
    WITHHOLD = "withhold"
    #: Honest, and also sends blocks with bad signatures or unknown parents.
    BAD_BLOCKS = "bad-blocks"


class SimValidator:
    def __init__(
        self,
        context: Context,
        key: ProtocolKeyPair,
        scheduler: Scheduler,
        network: SimNetwork,
        seed: int,
        behaviour: Behaviour = Behaviour.HONEST,
        round_robin_schedule: bool = False,
    ) -> None:
        self.context = context
        self.index = context.own_index
        self._key = key
        self._scheduler = scheduler
        self._network = network
        self._seed = seed
        self.behaviour = behaviour
        self._round_robin = round_robin_schedule
        self.store = ConsensusStore.open_memory()
        self.transactions = TransactionQueue()
        self.protocol: ConsensusProtocol | None = None
        self._timer_generation = 0
        self._restarts = 0
        self.decisions: list[tuple[str, bool]] = []
        self._rng = random.Random(seed * 7919 + self.index)
        network.register(self.index, self._on_message)

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.protocol is not None

    def start(self) -> None:
        now = self._scheduler.now_ms
        self._restarts += 1
        rng = random.Random((self._seed * 1_000_003 + self.index) * 31 + self._restarts)
        self.protocol = ConsensusProtocol(
            self.context,
            self.store,
            self._key,
            self.transactions,
            rng,
            now,
            round_robin_schedule=self._round_robin,
        )
        self._network.set_up(self.index, True)
        self._dispatch(self.protocol.start(now))

    def crash(self) -> None:
        """Lose all memory; keep the store (what was flushed survives)."""
        self.protocol = None
        self._timer_generation += 1
        self._network.set_up(self.index, False)

    # --- events ----------------------------------------------------------------------------

    def _on_message(self, sender: int, message: object) -> None:
        if self.protocol is None or not isinstance(message, bytes):
            return
        self._dispatch(self.protocol.handle(sender, message, self._scheduler.now_ms))

    def _on_timer(self, generation: int) -> None:
        if self.protocol is None or generation != self._timer_generation:
            return
        self._dispatch(self.protocol.tick(self._scheduler.now_ms))

    def _dispatch(self, out: Outgoing) -> None:
        protocol = self.protocol
        assert protocol is not None
        for status in out.decided:
            self.decisions.append((status.decision.value, status.direct))
        for peer, message in out.sends:
            for target, payload in self._rewrite(peer, message):
                self._network.send(self.index, target, payload)
        self._timer_generation += 1
        generation = self._timer_generation
        now = self._scheduler.now_ms
        self._scheduler.at(protocol.next_deadline_ms(now), lambda: self._on_timer(generation))

    def _peers(self) -> list[int]:
        return [p for p in range(self.context.size) if p != self.index]

    def _rewrite(self, peer: int | None, message: ConsensusMessage) -> list[tuple[int, bytes]]:
        """Where each message goes, after this validator's behaviour has its say."""
        targets = self._peers() if peer is None else [peer]
        data = message.to_bytes()
        if not isinstance(message, BlockPush) or self.behaviour is Behaviour.HONEST:
            return [(t, data) for t in targets]
        if self.behaviour is Behaviour.WITHHOLD:
            return []
        block = SignedBlock.from_bytes(message.block)
        if self.behaviour is Behaviour.EQUIVOCATE and block.author == self.index and peer is None:
            twin = BlockPush(self._twin(block).to_bytes()).to_bytes()
            half = len(targets) // 2
            return [(t, data) for t in targets[:half]] + [(t, twin) for t in targets[half:]]
        if self.behaviour is Behaviour.BAD_BLOCKS and peer is None:
            junk = [BlockPush(b.to_bytes()).to_bytes() for b in self._junk(block)]
            return [(t, d) for t in targets for d in [data, *junk]]
        return [(t, data) for t in targets]

    def _twin(self, block: SignedBlock) -> SignedBlock:
        """A second, different block for the same slot, properly signed."""
        inner = block.block
        twin = Block(
            inner.epoch,
            inner.round,
            inner.author,
            inner.timestamp_ms,
            inner.ancestors,
            (*inner.transactions, b"equivocation"),
            inner.commit_votes,
        )
        return SignedBlock.sign(twin, self._key)

    def _junk(self, block: SignedBlock) -> list[SignedBlock]:
        """A block with a bad signature, and a block linking parents that don't exist."""
        inner = block.block
        bad_signature = SignedBlock(inner, Ed25519Signature(bytes(64)))
        phantom = BlockRef(
            inner.round - 1,
            (inner.author + 1) % self.context.size,
            BlockDigest(self._rng.randbytes(32)),
        )
        orphan = Block(
            inner.epoch,
            inner.round,
            inner.author,
            inner.timestamp_ms,
            (*inner.ancestors[:1], phantom, *inner.ancestors[2:]),
            (b"orphan",),
            (),
        )
        return [bad_signature, SignedBlock.sign(orphan, self._key)]

    # --- observation -----------------------------------------------------------------------

    def commits(self) -> list[Commit]:
        """The commits this validator made, as its store holds them."""
        return list(self.store.scan_commits(1))

    @property
    def highest_round(self) -> int:
        if self.protocol is None:
            return 0
        return self.protocol.dag.highest_accepted_round

    @property
    def clock_round(self) -> int:
        return 0 if self.protocol is None else self.protocol.core.clock.round

    @property
    def last_committed_round(self) -> int:
        """The round of the last leader this validator committed (0 before any)."""
        if self.protocol is None:
            return 0
        last = self.protocol.dag.last_commit
        return 0 if last is None else last.leader.round
