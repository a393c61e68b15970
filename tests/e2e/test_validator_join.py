"""A candidate validator end to end: `soma genesis` with an epoch length and a minimum
stake, `soma start` runs the network (its API shows them), `soma validator new`
writes a candidate and funds its account through the faucet, and `soma client
validator join` executes its AddValidator with success (the join takes effect at the
next epoch change, which this test does not wait for). The committee, status and
supply commands show what a user needs along the way."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_network import Network, processes_of


def soma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soma", *args], capture_output=True, text=True, timeout=120
    )


def client(directory: Path, *args: str) -> Any:
    out = soma("client", "--json", "--dir", str(directory), *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


#: The network's parameters, set at genesis: an hour's epochs (none ends during the
#: test) and a minimum stake of its own.
EPOCH_MS = 3_600_000
MIN_STAKE = 5_000


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    written = soma(
        *("genesis", "--dir", str(tmp_path / "net")),
        *("--epoch-duration-ms", str(EPOCH_MS), "--min-validator-stake", str(MIN_STAKE)),
    )
    assert written.returncode == 0, written.stderr
    net = Network(tmp_path / "net")
    try:
        yield net
    finally:
        net.stop()
    assert not processes_of(tmp_path / "net")


def test_a_candidate_is_funded_and_its_join_executes(network: Network, tmp_path: Path) -> None:
    root = network.directory
    status = client(root, "status")
    assert status["epoch"] == 0
    assert (status["epoch_duration_ms"], status["min_validator_stake"]) == (EPOCH_MS, MIN_STAKE)
    needed = status["min_validator_stake"] + 10 * status["transaction_fee"]

    out = tmp_path / "cand"
    written = soma("validator", "new", "--dir", str(root), "--out", str(out), "--json")
    assert written.returncode == 0, written.stderr
    candidate = json.loads(written.stdout)
    assert set(candidate) == {"config", "address"}
    assert (out / "validator.yaml").resolve() == Path(candidate["config"])
    address = candidate["address"]
    assert network.balance(address) >= needed
    assert address in [row["address"] for row in client(root, "addresses")]

    committee = client(root, "committee")
    assert committee["epoch"] == 0 and len(committee["members"]) == 4
    assert sum(m["voting_power"] for m in committee["members"]) <= 10_000
    assert all(m["account"] and m["address"] == m["network_address"] for m in committee["members"])

    before = network.balance(address)
    joined = client(root, "validator", "join", "--config", candidate["config"])
    assert joined["status"] == "success", joined
    assert joined["digest"] and joined["fee"] == status["transaction_fee"]
    # The minimum stake (the default) and the fee left the account.
    assert network.balance(address) == before - status["min_validator_stake"] - joined["fee"]

    supply = client(root, "supply")
    assert supply["total"] == supply["genesis"]
    assert supply["stake"] >= status["min_validator_stake"]  # the candidate's, pending
