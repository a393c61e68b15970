"""`soma sim`: run the deterministic simulator and report agreement and commits."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from soma.sim.network import LatencyModel
from soma.sim.runner import COMMIT_SLACK_ROUNDS, Partition, SimConfig, SimResult, run_simulation
from soma.sim.validator import Behaviour


def sim(
    validators: Annotated[int, typer.Option("--validators", min=1, help="Committee size.")] = 4,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Run until honest validators reach it.")
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", help="One seed reproduces a run.")] = 0,
    latency_ms: Annotated[
        str, typer.Option("--latency-ms", help="Link latency LO:HI in ms (uniform).")
    ] = "10:50",
    loss: Annotated[float, typer.Option("--loss", help="Message loss probability.")] = 0.0,
    crash: Annotated[
        int, typer.Option("--crash", min=0, help="Validators that crash and restart.")
    ] = 0,
    equivocate: Annotated[
        int, typer.Option("--equivocate", min=0, help="Validators sending two blocks a round.")
    ] = 0,
    withhold: Annotated[
        int, typer.Option("--withhold", min=0, help="Validators that send none of their blocks.")
    ] = 0,
    bad_blocks: Annotated[
        int, typer.Option("--bad-blocks", min=0, help="Validators also sending invalid blocks.")
    ] = 0,
    partition_at: Annotated[
        str | None,
        typer.Option("--partition-at", help="ROUND:MS: split into halves at ROUND for MS."),
    ] = None,
    leaders_per_round: Annotated[
        int, typer.Option("--leaders-per-round", min=1, help="Leader slots per round.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run all validators in one process on a virtual clock; exit 0 only if the honest
    validators agree and reach the target (the round, committing)."""
    logging.getLogger("soma").setLevel(logging.ERROR)
    try:
        config = SimConfig(
            validators=validators,
            rounds=rounds,
            seed=seed,
            latency=LatencyModel.parse(latency_ms),
            loss=loss,
            crash=crash,
            equivocate=equivocate,
            withhold=withhold,
            bad_blocks=bad_blocks,
            partition=Partition.parse(partition_at) if partition_at else None,
            leaders_per_round=leaders_per_round,
        )
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    result = run_simulation(config)
    report = result.to_json()
    if as_json:
        typer.echo(json.dumps(report))
    else:
        counts = report["commit_counts"]
        typer.echo(
            f"seed {seed}: {validators} validators, {result.virtual_seconds:.1f} s virtual, "
            f"{result.wall_seconds:.1f} s wall; commits per honest node {counts}; "
            f"direct commits {report['direct_commits']}, direct skips {report['direct_skips']}, "
            f"indirect commits {report['indirect_commits']}; "
            f"agreement {'yes' if result.agreement.agreement else 'NO'}; "
            f"target {'reached' if result.reached_target else 'MISSED'}"
        )
        for problem in result.agreement.problems[:10]:
            typer.echo(f"  {problem}")
        if not result.reached_target:
            typer.echo(f"  {missed_target(result)}")
    if not (result.agreement.agreement and result.reached_target):
        raise typer.Exit(code=1)


def missed_target(result: SimResult) -> str:
    """One line: which honest validators fell short of the target, and where they were."""
    config = result.config
    behind = [
        f"{v.index} at round {v.clock_round}, last commit at round {v.last_committed_round}"
        + ("" if v.up else ", down")
        for v in result.validators
        if v.behaviour is Behaviour.HONEST
        and not (
            v.up
            and v.clock_round >= config.rounds
            and v.last_committed_round >= config.rounds - COMMIT_SLACK_ROUNDS
        )
    ]
    return (
        f"target MISSED after {result.virtual_seconds:.1f} s virtual: round {config.rounds}"
        f" with a commit at round {config.rounds - COMMIT_SLACK_ROUNDS} or later;"
        f" validator {'; '.join(behind)}"
    )
