"""`soma bench transfers`: a short run over four node processes reports the figures, and
bad arguments are refused before anything starts."""

from __future__ import annotations

import json

from click.testing import CliRunner

from soma.cli.main import app


def test_short_transfers_bench_reports_figures() -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "transfers",
            "--validators",
            "4",
            "--duration",
            "3",
            "--accounts",
            "20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["transfers"] > 0 and figures["tps"] > 0
    assert figures["failed"] == 0, figures
    assert set(figures["latency_ms"]) == {"p50", "p90", "p99"}


def test_bad_arguments_exit_2() -> None:
    for args in (["--validators", "0"], ["--duration", "0"], ["--accounts", "0"]):
        result = CliRunner().invoke(app, ["bench", "transfers", *args])
        assert result.exit_code == 2 and "error:" in result.stderr, args
