"""Run a simulated network: build the committee, schedule faults, run until the honest
validators reach the target round, check agreement, report.

Everything random (keys, latencies, crash times, partition halves) comes from
generators seeded by the one seed, and every event is ordered by (virtual time, order of
scheduling), so one seed reproduces a run bit for bit in any process.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

from soma.consensus.context import Context
from soma.consensus.local_committee import build_committee
from soma.consensus.parameters import ConsensusParameters
from soma.sim.checker import AgreementReport, check_agreement
from soma.sim.network import LatencyModel, SimNetwork
from soma.sim.scheduler import Scheduler
from soma.sim.validator import Behaviour, SimValidator


@dataclasses.dataclass(frozen=True)
class Partition:
    at_round: int
    duration_ms: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """`ROUND:MS`."""
        try:
            round_text, ms_text = text.split(":")
            return cls(int(round_text), int(ms_text))
        except ValueError:
            raise ValueError(f"partition {text!r} is not ROUND:MS") from None


#: How far below the target round the last committed leader may be when a run is done.
COMMIT_SLACK_ROUNDS = 10


@dataclasses.dataclass(frozen=True)
class SimConfig:
    validators: int = 4
    rounds: int = 100
    seed: int = 0
    latency: LatencyModel = dataclasses.field(default_factory=LatencyModel)
    loss: float = 0.0
    crash: int = 0
    equivocate: int = 0
    withhold: int = 0
    bad_blocks: int = 0
    partition: Partition | None = None
    leaders_per_round: int = 1
    round_robin: bool = False
    #: Crash downtime range, in virtual milliseconds.
    downtime_ms: tuple[int, int] = (500, 3_000)
    #: Give up (and report) past this much virtual time.
    max_virtual_ms: int = 600_000
    parameters: ConsensusParameters | None = None

    def __post_init__(self) -> None:
        faulty = self.equivocate + self.withhold + self.bad_blocks + self.crash
        if self.validators < 1:
            raise ValueError("at least one validator is needed")
        if self.rounds < 1:
            raise ValueError("rounds must be positive")
        if faulty > (self.validators - 1) // 3:
            raise ValueError(
                f"{faulty} faulty validators exceed f = {(self.validators - 1) // 3} "
                f"for {self.validators} validators"
            )


@dataclasses.dataclass
class SimResult:
    config: SimConfig
    agreement: AgreementReport
    commits: dict[int, list[str]]
    last_committed_round: dict[int, int]
    decisions: dict[str, int]
    virtual_seconds: float
    wall_seconds: float
    reached_target: bool
    events: int
    #: The simulated validators themselves, for tests that look inside.
    validators: list[SimValidator] = dataclasses.field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "validators": self.config.validators,
            "rounds": self.config.rounds,
            "commits": {str(k): v for k, v in self.commits.items()},
            "commit_counts": {str(k): len(v) for k, v in self.commits.items()},
            "last_committed_round": {str(k): v for k, v in self.last_committed_round.items()},
            "direct_commits": self.decisions["direct_commits"],
            "direct_skips": self.decisions["direct_skips"],
            "indirect_commits": self.decisions["indirect_commits"],
            "indirect_skips": self.decisions["indirect_skips"],
            "virtual_seconds": self.virtual_seconds,
            "wall_seconds": round(self.wall_seconds, 3),
            "reached_target": self.reached_target,
            "events": self.events,
            "agreement": self.agreement.agreement,
            "agreement_problems": self.agreement.problems,
        }


def run_simulation(config: SimConfig) -> SimResult:
    started = time.perf_counter()
    params = config.parameters or ConsensusParameters(leaders_per_round=config.leaders_per_round)
    committee, keys = build_committee(config.validators, config.seed)
    scheduler = Scheduler()
    fault_rng = random.Random(config.seed * 2 + 1)
    network = SimNetwork(
        scheduler, random.Random(config.seed * 2), config.validators, config.latency, config.loss
    )
    # Byzantine roles go to the highest indices, crashes to the ones below them.
    behaviours = [Behaviour.HONEST] * config.validators
    index = config.validators - 1
    for behaviour, count in (
        (Behaviour.EQUIVOCATE, config.equivocate),
        (Behaviour.WITHHOLD, config.withhold),
        (Behaviour.BAD_BLOCKS, config.bad_blocks),
    ):
        for _ in range(count):
            behaviours[index] = behaviour
            index -= 1
    crashing = list(range(index, index - config.crash, -1))
    validators = [
        SimValidator(
            Context(committee, i, params),
            keys[i],
            scheduler,
            network,
            config.seed,
            behaviours[i],
            config.round_robin,
        )
        for i in range(config.validators)
    ]
    for v in validators:
        scheduler.at(0, v.start)
    honest = [v for v in validators if v.behaviour is Behaviour.HONEST]
    _schedule_crashes(config, scheduler, fault_rng, [validators[i] for i in crashing], params)
    if config.partition is not None:
        _schedule_partition(config.partition, scheduler, network, validators)

    # The target: every honest validator up, at the target round, and committing: a
    # leader at most `COMMIT_SLACK_ROUNDS` below it committed (a run whose rounds go on
    # while its commits stopped has lost liveness, and must not pass for a success).
    committed_by = config.rounds - COMMIT_SLACK_ROUNDS

    def done() -> bool:
        return all(
            v.up and v.clock_round >= config.rounds and v.last_committed_round >= committed_by
            for v in honest
        )

    reached = scheduler.run(done, config.max_virtual_ms)
    commits = {v.index: v.commits() for v in honest}
    report = check_agreement(commits)
    reference = honest[0]
    counts = {"direct_commits": 0, "direct_skips": 0, "indirect_commits": 0, "indirect_skips": 0}
    for decision, direct in reference.decisions:
        counts[f"{'direct' if direct else 'indirect'}_{decision}s"] += 1
    return SimResult(
        config=config,
        agreement=report,
        commits={i: [c.digest().hex() for c in cs] for i, cs in commits.items()},
        last_committed_round={i: (cs[-1].leader.round if cs else 0) for i, cs in commits.items()},
        decisions=counts,
        virtual_seconds=scheduler.now_ms / 1000,
        wall_seconds=time.perf_counter() - started,
        reached_target=reached,
        events=scheduler.events_run,
        validators=validators,
    )


def _schedule_crashes(
    config: SimConfig,
    scheduler: Scheduler,
    rng: random.Random,
    crashing: list[SimValidator],
    params: ConsensusParameters,
) -> None:
    """Each crashing validator goes down at a random time within the run's expected
    span (a round takes roughly the minimum round delay plus a latency) and comes back
    after a random downtime."""
    expected_ms = config.rounds * (params.min_round_delay_ms + config.latency.high_ms)
    for v in crashing:
        crash_at = rng.randint(expected_ms // 10, max(expected_ms // 10, expected_ms // 2))
        downtime = rng.randint(*config.downtime_ms)
        scheduler.at(crash_at, v.crash)
        scheduler.at(crash_at + downtime, v.start)


def _schedule_partition(
    partition: Partition, scheduler: Scheduler, network: SimNetwork, validators: list[SimValidator]
) -> None:
    """Split into two halves (neither holding a quorum) once any validator reaches the
    round, for the given virtual time; then heal."""
    half = len(validators) // 2
    groups = [list(range(half)), list(range(half, len(validators)))]

    def watch() -> None:
        if max(v.clock_round for v in validators) >= partition.at_round:
            network.partition(groups)
            scheduler.after(partition.duration_ms, network.heal)
        else:
            scheduler.after(10, watch)

    scheduler.at(0, watch)
