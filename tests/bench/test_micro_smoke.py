"""`bench/micro.py` keeps running and reports every figure it promises (no timing
assertions: speed targets live in the benchmark's output, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "micro.py"

EXPECTED = {
    "transfer_tx_encode",
    "transfer_tx_decode",
    "transaction_digest",
    "ed25519_sign",
    "ed25519_verify",
    "quorum_verify_3_of_4",
    "quorum_verify_67_of_100",
    "rocksdb_batch_write_100_keys",
    "rocksdb_point_read",
}


def test_micro_benchmark_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(done.stdout)
    assert figures.keys() >= EXPECTED
    assert all(value > 0 for value in figures.values())
