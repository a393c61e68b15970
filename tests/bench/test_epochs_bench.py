"""`soma bench epochs`: the report's arithmetic, the command's exit codes, and one real
run across epoch changes.

No test asserts a latency: the 2 s target is the benchmark's to report (`met`), not a
test's to enforce. The real run (about 30 s, half of it starting the nodes) checks that
the measurement happens: epochs change under the load, transfers span them, none fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from soma.bench import epochs_bench
from soma.bench.epochs_bench import TARGET_MS, Transfer, summarize
from soma.cli.main import app


def _transfer(
    started_s: float,
    latency_s: float,
    before: int | None,
    after: int | None,
    outcome: str = "success",
) -> Transfer:
    return Transfer(0, started_s, started_s + latency_s, outcome, before, after)


def test_summarize_measures_the_pause_from_boundary_spanning_transfers() -> None:
    transfers = [
        _transfer(0.0, 1.0, 1, 1),
        _transfer(1.0, 1.0, 1, 1),
        _transfer(2.0, 3.5, 1, 2),  # spans the change to epoch 2
        _transfer(6.0, 1.0, 2, 2),
        _transfer(7.0, 1.2, 2, 3),  # spans the change to epoch 3
        _transfer(9.0, 9.0, None, 3),  # an unreadable epoch: not counted as spanning
    ]
    report = summarize(transfers, [(0.0, 1), (4.0, 2), (8.0, 3)])
    assert (report["transfers"], report["failed"], report["epoch_changes"]) == (6, 0, 2)
    assert report["boundary_transfers"] == 2
    assert report["boundary_max_ms"] == 3500.0
    assert report["median_ms"] == 1000.0
    assert report["max_ms"] == 9000.0
    assert report["pause_over_median_ms"] == 2500.0
    assert report["target_ms"] == TARGET_MS
    assert report["met"] is False
    assert [s["epochs"] for s in report["boundary_spans"]] == [[1, 2], [2, 3]]


def test_summarize_meets_the_target_and_lists_failures() -> None:
    transfers = [
        _transfer(0.0, 1.0, 4, 4),
        _transfer(1.0, 2.5, 4, 5),
        _transfer(4.0, 0.1, 5, 5, outcome="TIMEOUT: no answer"),
    ]
    report = summarize(transfers, [])
    assert report["pause_over_median_ms"] == 1500.0 and report["met"] is True
    assert report["epoch_changes"] == 1  # from the senders' readings alone
    assert report["failed"] == 1
    assert report["failures"] == [{"sender": 0, "at_s": 4.0, "outcome": "TIMEOUT: no answer"}]


def test_summarize_without_a_boundary_measures_nothing() -> None:
    report = summarize([_transfer(0.0, 1.0, 1, 1)], [(0.0, 1)])
    assert report["boundary_transfers"] == 0
    assert report["pause_over_median_ms"] is None and report["met"] is False


@pytest.mark.parametrize("args", [["--duration", "0"], ["--epoch-ms", "10"], ["--senders", "0"]])
def test_bad_arguments_exit_2_before_anything_starts(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["bench", "epochs", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: --"), result.output


def _fake_report(**changes: Any) -> dict[str, Any]:
    transfers = [_transfer(0.0, 1.0, 1, 1), _transfer(1.0, 4.0, 1, 2)]
    report = {
        "validators": 4,
        "senders": 1,
        "epoch_ms": 3000,
        "duration_s": 5.0,
        **summarize(transfers, [(0.0, 1), (2.0, 2)]),
        "nodes_exited": [],
    }
    report.update(changes)
    return report


def test_a_missed_target_is_reported_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake(config: object, progress: object) -> dict[str, Any]:
        return _fake_report()

    monkeypatch.setattr(epochs_bench, "run_epochs_bench", fake)
    result = CliRunner().invoke(app, ["bench", "epochs"])
    assert result.exit_code == 0, result.output
    assert "spanning an epoch change" in result.stdout
    assert "pause over median: 3,000 ms" in result.stdout and "missed" in result.stdout
    as_json = CliRunner().invoke(app, ["bench", "epochs", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["met"] is False


def test_a_failed_transfer_exits_1_and_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = {"sender": 3, "at_s": 7.25, "outcome": "failure"}

    async def fake(config: object, progress: object) -> dict[str, Any]:
        return _fake_report(failed=1, failures=[failure])

    monkeypatch.setattr(epochs_bench, "run_epochs_bench", fake)
    result = CliRunner().invoke(app, ["bench", "epochs", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failed"] == 1
    assert "sender 3 at 7.25 s: failure" in result.stderr


@pytest.mark.slow  # a real network for 12 s: `soma bench epochs` itself is run by hand
def test_a_real_network_changes_epochs_under_load_without_a_failed_transfer() -> None:
    args = ["--duration", "12", "--epoch-ms", "3000", "--senders", "2", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "soma", "bench", "epochs", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["failed"] == 0 and report["failures"] == []
    assert report["nodes_exited"] == []
    assert report["epoch_changes"] >= 2
    assert report["transfers"] > 0 and report["boundary_transfers"] > 0
    for key in ("median_ms", "p99_ms", "max_ms", "boundary_max_ms", "pause_over_median_ms"):
        assert isinstance(report[key], float), key
    assert report["target_ms"] == TARGET_MS
    assert report["met"] == (report["pause_over_median_ms"] <= TARGET_MS)
    assert len(report["boundary_spans"]) == report["boundary_transfers"]
