"""`soma sim` reports what the issue promises and exits 0 only on agreement with the
target reached."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

import soma.cli.sim as sim_cli
from soma.cli.main import app
from soma.sim.runner import SimConfig, SimResult, run_simulation

runner = CliRunner()


def test_json_report_fields() -> None:
    result = runner.invoke(
        app, ["sim", "--validators", "4", "--rounds", "30", "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for field in (
        "seed",
        "validators",
        "commits",
        "last_committed_round",
        "direct_commits",
        "direct_skips",
        "indirect_commits",
        "virtual_seconds",
        "wall_seconds",
        "agreement",
    ):
        assert field in report
    assert report["seed"] == 3 and report["validators"] == 4
    assert set(report["commits"]) == {"0", "1", "2", "3"}
    assert all(len(d) == 64 for d in report["commits"]["0"])
    assert report["agreement"] is True


def test_human_output() -> None:
    result = runner.invoke(app, ["sim", "--rounds", "10", "--seed", "1"])
    assert result.exit_code == 0
    assert "agreement yes" in result.stdout


def test_bad_arguments_exit_2_with_a_message() -> None:
    for args in (
        ["sim", "--latency-ms", "fast"],
        ["sim", "--partition-at", "10"],
        ["sim", "--validators", "4", "--crash", "2"],
        ["sim", "--latency-ms", "50:10"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error" in result.output.lower()


def test_a_run_that_misses_its_target_exits_1_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agreement alone is not success: honest validators that stop short of the target
    (here: a virtual-time budget far too short for it) make the run fail."""

    def short(config: SimConfig) -> SimResult:
        return run_simulation(dataclasses.replace(config, max_virtual_ms=500))

    monkeypatch.setattr(sim_cli, "run_simulation", short)
    result = runner.invoke(app, ["sim", "--rounds", "60", "--seed", "1"])
    assert result.exit_code == 1, result.output
    assert "agreement yes" in result.stdout and "target MISSED" in result.stdout
    assert "validator 0 at round" in result.stdout
    as_json = runner.invoke(app, ["sim", "--rounds", "60", "--seed", "1", "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["agreement"] is True and report["reached_target"] is False
