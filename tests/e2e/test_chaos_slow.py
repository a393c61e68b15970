"""Soak: a random validator SIGKILLed and restarted for at least 100 cycles under a stream
of transfers (`soma bench chaos`): no certified transaction lost, every transfer
succeeds, one state root, no equivocation, supply conserved. Slow (about six minutes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_a_hundred_validator_kills_under_transfers_lose_nothing() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "soma", "bench", "chaos", "--duration", "300", "--json"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["kills"] >= 100, result
    assert result["lost"] == 0 and result["failed"] == 0, result
    assert result["state_roots_agree"] and result["equivocations"] == 0, result
    assert result["supply_conserved"], result
