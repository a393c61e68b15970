"""Synchronization of missing blocks, as decisions with no I/O.

The block manager reports references its suspended blocks wait for. The synchronizer
decides whom to ask and when: first a peer that sent a block linking the missing one (it
must have accepted it, so it holds the ancestor) or the missing block's author; if that
request times out or comes back without it, the next candidate, then the other peers in
random order, each asked once before any is asked again. Requests are bounded per peer,
a reference is never in two requests at once, and each request has a deadline.
References tried least often go first, so ones nobody can serve (ancestors a Byzantine
block made up) cannot crowd out the rest. The network layer (or the simulator) carries
out the requests `poll` returns and reports the outcome.

The answering side is `blocks_for_fetch`: the blocks asked for, plus those of their
ancestors the asker lacks (above its highest accepted round of each author, and above
our GC round), up to a count and a byte cap, so a node a little behind catches up in a
few round trips instead of one per round.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from soma.consensus.dag_state import DagState
from soma.consensus.parameters import ConsensusParameters
from soma.types.consensus.block import BlockRef, SignedBlock


@dataclasses.dataclass(frozen=True)
class FetchRequest:
    request_id: int
    peer: int
    refs: tuple[BlockRef, ...]


@dataclasses.dataclass
class _Missing:
    hints: list[int]  # peers known to hold it, in the order we learned of them
    attempts: int = 0
    in_flight: int | None = None  # request id
    #: Peers asked for it since every peer last was: not asked again before the rest.
    asked: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _InFlight:
    peer: int
    refs: tuple[BlockRef, ...]
    deadline_ms: int


class Synchronizer:
    def __init__(
        self,
        own_index: int,
        committee_size: int,
        parameters: ConsensusParameters,
        rng: random.Random,
    ) -> None:
        self._own = own_index
        self._peers = [p for p in range(committee_size) if p != own_index]
        self._params = parameters
        self._rng = rng
        self._missing: dict[BlockRef, _Missing] = {}
        self._in_flight: dict[int, _InFlight] = {}
        self._per_peer = dict.fromkeys(self._peers, 0)
        self._next_id = 1

    # --- what is missing ------------------------------------------------------------------

    def set_missing(self, refs: Sequence[BlockRef], hint: int | None = None) -> None:
        """The block manager's current list of missing references (complete: anything
        not listed is no longer missing); `hint` is the peer whose block revealed them."""
        wanted = set(refs)
        for ref in [r for r in self._missing if r not in wanted]:
            del self._missing[ref]
        for ref in refs:
            entry = self._missing.get(ref)
            if entry is None:
                entry = self._missing[ref] = _Missing([])
            if hint is not None and hint != self._own and hint not in entry.hints:
                entry.hints.append(hint)

    def missing_count(self) -> int:
        return len(self._missing)

    # --- requests -------------------------------------------------------------------------

    def expire(self, now_ms: int) -> None:
        """Give up on requests past their deadline (their references may be asked
        again). Done on every tick, whether or not new requests may be sent."""
        for request_id in [i for i, r in self._in_flight.items() if r.deadline_ms <= now_ms]:
            self._finish(request_id)

    def poll(self, now_ms: int) -> list[FetchRequest]:
        """Expire overdue requests and return new ones to send now."""
        self.expire(now_ms)
        batches: dict[int, list[BlockRef]] = {}
        cap = self._params.max_blocks_per_fetch
        # The least tried first (then the lowest round): a Byzantine author's blocks may
        # name ancestors that do not exist, and asking for those first, every time, would
        # fill every request slot and starve the real ones for good.
        for ref, entry in sorted(
            self._missing.items(), key=lambda item: (item[1].attempts, item[0])
        ):
            if entry.in_flight is not None:
                continue
            peer = self._choose_peer(ref, entry, batches)
            if peer is None:
                continue
            batch = batches.setdefault(peer, [])
            if len(batch) < cap:
                batch.append(ref)
        requests = []
        for peer in sorted(batches):
            refs = tuple(batches[peer])
            request_id = self._next_id
            self._next_id += 1
            self._in_flight[request_id] = _InFlight(
                peer, refs, now_ms + self._params.fetch_timeout_ms
            )
            self._per_peer[peer] += 1
            for ref in refs:
                entry = self._missing[ref]
                entry.in_flight = request_id
                entry.attempts += 1
                entry.asked.add(peer)
            requests.append(FetchRequest(request_id, peer, refs))
        return requests

    def _choose_peer(
        self, ref: BlockRef, entry: _Missing, batches: dict[int, list[BlockRef]]
    ) -> int | None:
        """Known holders first (hints, then the author), then random peers, each asked
        once before any is asked again. A peer that answered without the block lacks it
        too; its answer freed the one request slot open, so asking it again at once
        would go on forever (two lagging validators did so, each asking the other)."""
        if len(entry.asked) >= len(self._peers):
            entry.asked.clear()
        known = list(entry.hints)
        if ref.author != self._own and ref.author not in known:
            known.append(ref.author)
        others = [p for p in self._peers if p not in known]
        self._rng.shuffle(others)
        for peer in [*known, *others]:
            if peer in entry.asked:
                continue
            busy = self._per_peer[peer] >= self._params.max_fetches_per_peer
            if peer in batches or not busy:
                return peer
        return None

    def on_response(self, request_id: int) -> None:
        """The request was answered (its blocks, if any, already went to the core, which
        then updated `set_missing`); what is still missing may be asked again."""
        self._finish(request_id)

    def _finish(self, request_id: int) -> None:
        request = self._in_flight.pop(request_id, None)
        if request is None:
            return
        self._per_peer[request.peer] -= 1
        for ref in request.refs:
            entry = self._missing.get(ref)
            if entry is not None and entry.in_flight == request_id:
                entry.in_flight = None

    def next_deadline_ms(self) -> int | None:
        if not self._in_flight:
            return None
        return min(r.deadline_ms for r in self._in_flight.values())


def blocks_for_fetch(
    dag: DagState,
    refs: Sequence[BlockRef],
    highest_accepted_rounds: Sequence[int],
    cap: int,
    max_bytes: int | None = None,
) -> list[SignedBlock]:
    """Answer a fetch: the requested blocks we hold (from memory or the store), then
    their ancestors the asker lacks, nearest first, ordered by round (ancestors first).

    At most `cap` blocks, and blocks totalling at most `max_bytes` (the first one always
    goes, so a large block can still be fetched). Extra ancestors come only from above
    our GC round: an asker missing older ones is far behind, and catches up on certified
    commits instead of walking the DAG back from us block by block."""
    found: dict[BlockRef, SignedBlock] = {}
    budget = [max_bytes if max_bytes is not None else -1]

    def take(block: SignedBlock) -> bool:
        size = len(block.to_bytes())
        if budget[0] >= 0 and found and size > budget[0]:
            return False
        if budget[0] >= 0:
            budget[0] = max(0, budget[0] - size)
        found[block.reference()] = block
        return True

    for block in dag.get_blocks(list(refs[:cap])):
        if block is not None and not take(block):
            return _in_round_order(found)
    gc_round = dag.gc_round
    frontier = list(found.values())
    while frontier and len(found) < cap:
        wanted: list[BlockRef] = []
        for block in frontier:
            for ref in block.ancestors:
                known = (
                    highest_accepted_rounds[ref.author]
                    if ref.author < len(highest_accepted_rounds)
                    else 0
                )
                if ref.round > max(known, gc_round) and ref not in found and ref not in wanted:
                    wanted.append(ref)
        frontier = []
        for block in dag.get_blocks(wanted[: cap - len(found)]):
            if block is None or block.round == 0:
                continue
            if not take(block):
                return _in_round_order(found)
            frontier.append(block)
    return _in_round_order(found)


def _in_round_order(blocks: dict[BlockRef, SignedBlock]) -> list[SignedBlock]:
    return sorted(blocks.values(), key=lambda b: b.reference().sort_key())
