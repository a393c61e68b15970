"""The leader schedule: who leads each slot.

Election is stake-weighted and seeded by the round: for round r, a pseudo-random
permutation of the authorities, each drawn with probability proportional to its stake
among those not yet drawn, is derived from Blake2b(epoch, round); leader offset k takes the
k-th. Every validator computes the same permutation with no communication, and the L
leaders of one round are always distinct.

Reputation keeps slow or silent validators from stalling the chain. Every
`commits_per_schedule_update` commits, each authority is scored over the blocks committed
since the last update: for every committed leader, each voting-round block that links it
(a vote) earns its author the stake of the committed decision-round blocks that link the
vote (the stake that later builds on it). The authorities with the lowest scores, holding
up to `bad_nodes_stake_percent` of the stake and scoring below half the best score, are
swapped out of their leader slots for
authorities with the highest scores (holding up to as much stake), chosen per slot by the
same seeded hash. Scores are stored with the commit at which they take effect, so a
restarted node elects exactly the leaders its peers do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock
from soma.types.consensus.commit import CommittedSubDag, ReputationScores

#: An authority is swapped out only if its score is below this percentage of the best
#: score (a crashed or withholding one scores near zero).
BAD_SCORE_PERCENT = 50


def _seeded_uniform(tag: bytes, *numbers: int) -> int:
    """A 64-bit number derived from `tag` and `numbers`, the same everywhere."""
    h = hashlib.blake2b(tag, digest_size=8)
    for n in numbers:
        h.update(n.to_bytes(8, "little"))
    return int.from_bytes(h.digest(), "little")


def stake_weighted_permutation(stakes: Sequence[int], epoch: int, round: int) -> list[int]:
    """Authorities in the order a stake-weighted draw without replacement, seeded by
    (epoch, round), picks them."""
    remaining = list(range(len(stakes)))
    order: list[int] = []
    draw = 0
    while remaining:
        total = sum(stakes[a] for a in remaining)
        point = _seeded_uniform(b"soma-leader-election", epoch, round, draw) % total
        draw += 1
        for i, authority in enumerate(remaining):
            point -= stakes[authority]
            if point < 0:
                order.append(remaining.pop(i))
                break
    return order


class LeaderSwapTable:
    """Which authorities lose their leader slots (bad) and who gets them (good)."""

    def __init__(self, scores: ReputationScores, committee: Committee, bad_stake_percent: int):
        self.scores = scores
        self.good: list[int] = []
        self.bad: set[int] = set()
        if bad_stake_percent == 0 or not any(scores.scores):
            return
        limit = committee.total_stake * bad_stake_percent // 100
        ranked = sorted(range(committee.size), key=lambda a: (-scores.scores[a], a))
        self.good = _take_within_stake(ranked, committee, limit)
        bad = _take_within_stake(list(reversed(ranked)), committee, limit)
        # Only clearly lagging authorities: among healthy ones the lowest score is noise,
        # and swapping one out would hand its slots to the others, a Byzantine one
        # perhaps among them.
        best = max(scores.scores)
        bad = [a for a in bad if scores.scores[a] * 100 < best * BAD_SCORE_PERCENT]
        self.bad = set(bad) - set(self.good)
        if not self.good:
            self.bad = set()

    def swap(self, leader: int, round: int, leader_offset: int, taken: Sequence[int]) -> int:
        """The authority leading instead of `leader`, or `leader` itself if it is in
        good standing. `taken` (the round's other leaders, elected or swapped in) are
        never chosen, so the leaders of one round stay distinct."""
        if leader not in self.bad:
            return leader
        candidates = [a for a in self.good if a not in taken]
        if not candidates:
            return leader
        pick = _seeded_uniform(b"soma-leader-swap", round, leader_offset) % len(candidates)
        return candidates[pick]


def _take_within_stake(ranked: list[int], committee: Committee, limit: int) -> list[int]:
    chosen: list[int] = []
    stake = 0
    for authority in ranked:
        stake += committee.members[authority].stake
        if stake > limit:
            break
        chosen.append(authority)
    return chosen


class LeaderSchedule:
    def __init__(
        self,
        committee: Committee,
        leaders_per_round: int = 1,
        bad_stake_percent: int = 20,
        round_robin: bool = False,
        scores: ReputationScores | None = None,
    ) -> None:
        self._committee = committee
        self._stakes = [m.stake for m in committee.members]
        self._leaders_per_round = leaders_per_round
        self._bad_stake_percent = bad_stake_percent
        self._round_robin = round_robin
        if scores is None:
            scores = ReputationScores(0, 0, (0,) * committee.size)
        self.swap_table = LeaderSwapTable(scores, committee, bad_stake_percent)
        self._cache: dict[int, list[int]] = {}

    def leaders(self, round: int) -> list[int]:
        """The leaders of every offset of `round`."""
        cached = self._cache.get(round)
        if cached is not None:
            return cached
        size = self._committee.size
        if self._round_robin:
            base = [(round + k) % size for k in range(self._leaders_per_round)]
        else:
            permutation = stake_weighted_permutation(self._stakes, self._committee.epoch, round)
            base = permutation[: self._leaders_per_round]
        chosen: list[int] = []
        for offset, leader in enumerate(base):
            taken = chosen + base[offset + 1 :]
            chosen.append(self.swap_table.swap(leader, round, offset, taken))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[round] = chosen
        return chosen

    def elect_leader(self, round: int, leader_offset: int) -> int:
        return self.leaders(round)[leader_offset]

    def update(self, scores: ReputationScores) -> None:
        """Apply new reputation scores to the slots elected from now on."""
        self.swap_table = LeaderSwapTable(scores, self._committee, self._bad_stake_percent)
        self._cache.clear()


class ReputationTracker:
    """Accumulates committed sub-DAGs between schedule updates and scores them."""

    def __init__(self, committee: Committee) -> None:
        self._committee = committee
        self._blocks: dict[tuple[int, int], list[SignedBlock]] = {}
        self._leaders: list[SignedBlock] = []
        self._first_commit: int | None = None
        self._last_commit = 0

    def add(self, subdag: CommittedSubDag) -> None:
        if self._first_commit is None:
            self._first_commit = subdag.index
        self._last_commit = subdag.index
        leader_ref = subdag.leader
        for block in subdag.blocks:
            if block.reference() == leader_ref:
                self._leaders.append(block)
            self._blocks.setdefault((block.round, block.author), []).append(block)

    @property
    def commits(self) -> int:
        return 0 if self._first_commit is None else self._last_commit - self._first_commit + 1

    def scores(self) -> ReputationScores:
        members = self._committee.members
        score = [0] * self._committee.size
        by_round: dict[int, list[SignedBlock]] = {}
        for (round, _), blocks in self._blocks.items():
            by_round.setdefault(round, []).extend(blocks)
        for leader in self._leaders:
            leader_ref = leader.reference()
            for vote in by_round.get(leader.round + 1, ()):
                if leader_ref not in vote.ancestors:
                    continue
                vote_ref = vote.reference()
                linking = {
                    b.author for b in by_round.get(leader.round + 2, ()) if vote_ref in b.ancestors
                }
                score[vote.author] += sum(members[a].stake for a in linking)
        first = self._first_commit or 0
        return ReputationScores(first, self._last_commit, tuple(score))

    def reset(self) -> None:
        self._blocks = {}
        self._leaders = []
        self._first_commit = None
