"""A candidate joins the committee at the epoch change, end to end (slow: it waits for
epoch changes): a network of 15-second epochs, a candidate from `soma validator new`
running as its own node, `soma client validator join`, then a committee of five in
the next epoch with the candidate's voting power; transfers and the faucet work
across the later changes, and the supply stays what genesis created."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_network import Network, processes_of

EPOCH_MS = 15_000
#: Liveness bounds, not performance figures.
JOIN_S = 120.0


def soma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soma", *args], capture_output=True, text=True, timeout=120
    )


def client(directory: Path, *args: str) -> Any:
    out = soma("client", "--json", "--dir", str(directory), *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_a_candidate_joins_at_the_epoch_change(tmp_path: Path) -> None:
    root = tmp_path / "net"
    written = soma("genesis", "--dir", str(root), "--epoch-duration-ms", str(EPOCH_MS))
    assert written.returncode == 0, written.stderr
    network = Network(root)
    node: subprocess.Popen[bytes] | None = None
    try:
        new = soma(
            "validator", "new", "--dir", str(root), "--out", str(tmp_path / "cand"), "--json"
        )
        assert new.returncode == 0, new.stderr
        candidate = json.loads(new.stdout)
        node = subprocess.Popen(
            [sys.executable, "-m", "soma", "node", "--config", candidate["config"]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert node.stdout is not None and node.stdout.readline().startswith(b"READY")
        joined = client(root, "validator", "join", "--config", candidate["config"])
        assert joined["status"] == "success", joined
        first = client(root, "status")["epoch"]

        deadline = time.monotonic() + JOIN_S
        committee = client(root, "committee")
        while len(committee["members"]) < 5:
            assert time.monotonic() < deadline, f"not in the committee: {committee}"
            time.sleep(1)
            committee = client(root, "committee")
        assert committee["epoch"] > first
        member = next(m for m in committee["members"] if m["account"] == candidate["address"])
        assert member["hostname"] == "cand" and member["voting_power"] > 0
        assert sum(m["voting_power"] for m in committee["members"]) <= 10_000

        # The network goes on through later epoch changes, the candidate voting.
        while client(root, "status")["epoch"] < committee["epoch"] + 1:
            assert time.monotonic() < deadline + JOIN_S, "no later epoch change"
            time.sleep(1)
        recipient = client(root, "new-address")["address"]
        assert client(root, "faucet", recipient)["status"] == "success"
        sent = client(root, "transfer", "--to", recipient, "--amount", "5")
        assert sent["status"] == "success"
        supply = client(root, "supply")
        assert supply["total"] == supply["genesis"] and supply["stake"] > 0
    finally:
        if node is not None and node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
        network.stop()
    assert not processes_of(tmp_path)
