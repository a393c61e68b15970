"""`soma bench consensus`: argument checks, output modes, failure exit codes, and one real
run of four validators.

All but the last test replace the driver with a fake, so they check the command itself in
milliseconds; the smoke test runs `python -m soma` for real (about ten seconds, most of it
starting the validator processes).
"""

from __future__ import annotations

import asyncio
import errno
import io
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from soma.bench import chaos_bench, consensus_bench
from soma.bench.consensus_bench import ConsensusBenchConfig, LoadState
from soma.bench.stats import LatencyRecorder
from soma.cli.bench import Baseline, _LiveReporter
from soma.cli.main import app
from soma.consensus.parameters import ConsensusParameters

Progress = Callable[[str, float, LoadState], None] | None

RESULT: dict[str, Any] = {
    "tps": 1234.5,
    "latency_ms": {"p50": 110.2, "p90": 180.0, "p99": 250.7},
    "commits": 321,
    "rounds_per_s": 17.5,
    "validators": 4,
    "crashed": 0,
    "duration_s": 12.01,
    "tx_size": 64,
    "rate": None,
    "committed_transactions": 14826,
    "refused_transactions": 0,
    "failed_batches": 0,
    "last_error": None,
}


class Run:
    def __init__(self, *args: str) -> None:
        result = CliRunner().invoke(app, ["bench", "consensus", *args])
        self.code = result.exit_code
        self.out = result.stdout
        self.err = result.stderr
        # Anything but a clean exit (typer.Exit / SystemExit) is an uncaught exception.
        self.exception = result.exception if not isinstance(result.exception, SystemExit) else None


class FakeDriver:
    """Stands in for `run_consensus_bench`: records its arguments, reports progress like
    the driver does (every 0.25 s of "elapsed" time, here without waiting) and returns
    RESULT, or raises `error`."""

    def __init__(self, error: BaseException | None = None, labels: tuple[str, ...] = ()) -> None:
        self.error = error
        self.labels = labels
        self.calls: list[tuple[ConsensusBenchConfig, str | None]] = []

    async def __call__(
        self, config: ConsensusBenchConfig, progress: Progress = None, baseline: str | None = None
    ) -> dict[str, Any]:
        self.calls.append((config, baseline))
        if self.error is not None:
            raise self.error
        state = LoadState(LatencyRecorder())
        for label in self.labels:
            state = LoadState(LatencyRecorder())
            for tick in range(int(config.duration_s * 4)):
                state.committed = tick * 100
                if progress is not None:
                    progress(label, tick / 4, state)
        result = dict(RESULT)
        if baseline is not None:
            result["baseline"] = {"system": "raft (pysyncobj)", **RESULT, "tps": 411.5}
            result["ratio_vs_baseline"] = 3.0
        return result


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDriver:
    driver = FakeDriver(labels=("soma",))
    monkeypatch.setattr(consensus_bench, "run_consensus_bench", driver)
    return driver


MAX_TX = ConsensusParameters().max_transaction_bytes


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--validators", "0"], "validators must be at least 1"),
        (["--validators", "-3"], "validators must be at least 1"),
        (["--duration", "0"], "duration must be positive"),
        (["--duration", "-1"], "duration must be positive"),
        (["--duration", "nan"], "duration must be positive"),
        (["--duration", "inf"], "duration must be positive"),
        (["--tx-size", "7"], "8-byte counter"),
        (["--tx-size", "0"], "at least 8 bytes"),
        (["--tx-size", str(MAX_TX + 1)], f"limit of {MAX_TX} bytes"),
        (["--rate", "0"], "rate must be positive"),
        (["--rate", "-5"], "rate must be positive"),
        (["--crash", "-1"], "crash must not be negative"),
        (["--crash", "4"], "more than f = 1 for 4 validators"),
        (["--validators", "1", "--crash", "1"], "more than f = 0"),
        (["--crash", "2"], "more than f = 1 for 4 validators: a 3f+1 committee stops"),
        (["--validators", "3", "--crash", "1"], "more than f = 0"),
        (["--validators", "10", "--crash", "4", "--duration", "10"], "more than f = 3"),
        (["--crash", "1", "--duration", "5"], "crash needs a duration over 5 s"),
    ],
)
def test_bad_arguments_exit_2_with_one_error_line(
    fake: FakeDriver, args: list[str], says: str
) -> None:
    run = Run(*args)
    assert run.code == 2 and run.exception is None
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    assert says in lines[0]
    assert "Traceback" not in run.err
    assert fake.calls == []


def test_unknown_baseline_is_a_usage_error(fake: FakeDriver) -> None:
    # The choice is checked by typer/click (as `soma dag decide --schedule` is): its
    # message, not ours, but the same exit status and no traceback.
    run = Run("--baseline", "paxos")
    assert run.code == 2 and run.exception is None
    assert run.out == ""
    assert "error" in run.err.lower() and "'raft-batched'" in run.err
    assert "Traceback" not in run.err
    assert fake.calls == []


def test_baseline_choices_are_the_drivers() -> None:
    assert {b.value for b in Baseline} == set(consensus_bench.BASELINES)


def test_largest_allowed_sizes_are_accepted(fake: FakeDriver) -> None:
    assert Run("--tx-size", "8", "--duration", "0.5").code == 0
    assert Run("--tx-size", "8388", "--duration", "0.5").code == 0
    assert Run("--validators", "4", "--crash", "1", "--duration", "5.5").code == 0
    # An open loop's batches are small, so a large transaction fits.
    assert Run("--tx-size", str(MAX_TX), "--rate", "100", "--duration", "0.5").code == 0


def test_defaults_reach_the_driver(fake: FakeDriver) -> None:
    fake.labels = ()
    run = Run("--json")
    assert run.code == 0 and run.exception is None
    [(config, baseline)] = fake.calls
    assert (config.validators, config.duration_s, config.tx_size) == (4, 30.0, 512)
    assert (config.rate, config.crash, config.parameters, baseline) == (None, 0, {}, None)


def test_json_is_exactly_one_object_on_stdout(fake: FakeDriver) -> None:
    run = Run(
        "--validators", "7", "--duration", "12", "--tx-size", "64", "--rate", "5000",
        "--crash", "2", "--baseline", "raft-batched", "--json",
    )  # fmt: skip
    assert run.code == 0 and run.exception is None
    result = json.loads(run.out)
    assert result["tps"] == RESULT["tps"] and result["baseline"]["tps"] == 411.5
    [(config, baseline)] = fake.calls
    assert (config.validators, config.duration_s, config.tx_size) == (7, 12.0, 64)
    assert (config.rate, config.crash, baseline) == (5000, 2, "raft-batched")
    # Progress went to stderr: without a terminal, a line to start and one every 5 s.
    assert "soma: starting 7 validators" in run.err
    assert "soma: running for 12 s" in run.err
    assert "soma: 5/12 s, 2,000 transactions committed, 400 tps" in run.err
    assert "soma: 10/12 s" in run.err
    assert len(run.err.splitlines()) == 4


def test_human_summary(fake: FakeDriver) -> None:
    run = Run("--duration", "1", "--baseline", "raft")
    assert run.code == 0 and run.exception is None
    assert "tps" in run.out and "p99 ms" in run.out
    soma_row = next(line for line in run.out.splitlines() if "soma " in line and "1,234.5" in line)
    assert "110.2" in soma_row and "250.7" in soma_row and "321" in soma_row
    assert "17.5" in soma_row
    assert any("raft" in line and "411.5" in line for line in run.out.splitlines())
    assert "soma / raft: 3.0x tps" in run.out
    assert "4 validators (0 crashed), 64-byte transactions, closed loop" in run.out


@pytest.mark.parametrize(
    ("figures", "warnings"),
    [
        (
            {"committed_transactions": 0, "failed_batches": 3, "last_error": "X: y"},
            [
                "warning: soma committed no transactions",
                "warning: soma: 3 batches failed (last: X: y)",
            ],
        ),
        # Batches in flight to a crashed validator fail by design; they are counted apart.
        ({"crashed": 1, "failed_batches": 0, "batches_lost_with_crashed": 16}, []),
        ({"crashed": 1, "failed_batches": 1}, ["warning: soma: 1 batches failed"]),
    ],
)
def test_suspicious_figures_are_flagged_on_stderr(
    monkeypatch: pytest.MonkeyPatch, figures: dict[str, Any], warnings: list[str]
) -> None:
    result = {**RESULT, **figures}

    async def driver(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return result

    monkeypatch.setattr(consensus_bench, "run_consensus_bench", driver)
    run = Run("--json", "--duration", "1")
    assert run.code == 0
    assert json.loads(run.out) == result
    assert [line for line in run.err.splitlines() if line.startswith("warning")] == warnings


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            RuntimeError("node 2 failed to start:\nsome log line\nlast log line"),
            "error: node 2 failed to start:\n  some log line\n  last log line",
        ),
        (
            OSError(errno.EADDRINUSE, "Address already in use"),
            "error: Address already in use",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/tmp/x"),
            "error: No such file or directory (/tmp/x)",
        ),
        (TimeoutError(), "error: timed out"),
    ],
)
def test_run_failures_exit_1(
    fake: FakeDriver, monkeypatch: pytest.MonkeyPatch, error: BaseException, message: str
) -> None:
    monkeypatch.setattr(consensus_bench, "run_consensus_bench", FakeDriver(error))
    run = Run("--duration", "1", "--json")
    assert run.code == 1 and run.exception is None
    assert run.out == ""
    assert message in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_driver_and_its_cleanup_runs(
    monkeypatch: pytest.MonkeyPatch, signum: signal.Signals, code: int
) -> None:
    cleaned: list[str] = []

    async def driver(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            signal.raise_signal(signum)
            await asyncio.sleep(30)
        finally:
            # The driver's cleanup awaits (closing channels): that must still work.
            await asyncio.sleep(0)
            cleaned.append("stopped")
        return RESULT

    monkeypatch.setattr(consensus_bench, "run_consensus_bench", driver)
    run = Run("--duration", "1", "--json")
    assert cleaned == ["stopped"]
    assert run.code == code and run.exception is None
    assert run.out == ""
    assert run.err.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in run.err


def test_live_progress_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140)
    state = LoadState(LatencyRecorder())
    with _LiveReporter(["soma", "raft"], 4, 10.0, console) as reporter:
        for tick in range(12):
            state.committed = tick * 500
            reporter("soma", tick / 4, state)
        reporter("raft", 0.0, LoadState(LatencyRecorder()))
    text = out.getvalue()
    assert "soma" in text and "raft" in text and "done" in text
    assert "5,500 tx" in text and "2,000 tps" in text


@pytest.mark.parametrize("baseline", [None, "raft"])
def test_smoke_four_validators_for_two_seconds(baseline: str | None) -> None:
    args = ["--validators", "4", "--duration", "2", "--tx-size", "64", "--json"]
    if baseline is not None:
        args += ["--baseline", baseline]
    done = subprocess.run(
        [sys.executable, "-m", "soma", "bench", "consensus", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["latency_ms"]) == {"p50", "p90", "p99"}
    for key in ("tps", "commits", "rounds_per_s", "validators", "crashed"):
        assert key in result
    assert result["commits"] > 0 and result["tps"] > 0
    assert (result["validators"], result["crashed"]) == (4, 0)
    assert "Traceback" not in done.stderr
    if baseline is not None:
        assert result["baseline"]["tps"] > 0
        assert result["ratio_vs_baseline"] == round(result["tps"] / result["baseline"]["tps"], 2)


@pytest.mark.parametrize(
    "args",
    [
        ["--validators", "3"],
        ["--duration", "0"],
        ["--kill-every", "0"],
        ["--accounts", "0"],
    ],
)
def test_chaos_bad_arguments_exit_2_before_anything_starts(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["bench", "chaos", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: --"), result.output


def test_chaos_fails_when_a_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    figures = {
        "validators": 4,
        "duration_s": 1.0,
        "kills": 1,
        "transfers": 10,
        "tps": 10.0,
        "latency_ms": {},
        "resubmissions": 0,
        "failed": 0,
        "lost": 1,
        "state_roots_agree": True,
        "equivocations": 0,
        "supply_conserved": True,
    }

    async def fake(config: object, progress: object) -> dict[str, object]:
        return dict(figures)

    monkeypatch.setattr(chaos_bench, "run_chaos_bench", fake)
    result = CliRunner().invoke(app, ["bench", "chaos", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["lost"] == 1
    figures["lost"] = 0
    assert CliRunner().invoke(app, ["bench", "chaos", "--json"]).exit_code == 0
