"""Epochs end to end, on `soma start --epoch-duration-ms 5000`:

- the network changes epoch every few seconds, and its fullnode (the API) follows;
- a closed loop of `soma client transfer` calls across several epoch changes has no
  failure (transactions lost at a boundary are submitted again by the quorum driver);
- the supply stays the genesis supply after each epoch change (fees are paid out);
- a validator SIGKILLed as its epoch ends (the supervisor restarts it) comes back into
  the network's epoch and executes the same chain (no fork, the same certified roots).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soma.node.layout import validator_config_name
from tests.e2e.local_network import Network, node_status

EPOCH_MS = 5_000
#: Liveness bounds (the acceptance's own figure for the first).
FOUR_EPOCHS_S = 60.0
SETTLE_S = 120.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    directory = tmp_path_factory.mktemp("epochs") / "net"
    net = Network(directory, "--epoch-duration-ms", str(EPOCH_MS))
    try:
        yield net
    finally:
        net.stop()


def client(network: Network, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "soma", "client", "--json", "--dir", str(network.directory), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def validator_statuses(network: Network) -> list[Any]:
    """Each validator's own status (its service, not the API's fullnode)."""
    return [node_status(network.directory / validator_config_name(i)) for i in range(4)]


def test_transfers_across_epoch_changes_never_fail_and_the_fullnode_follows(
    network: Network,
) -> None:
    """From the network's start: transfers in a closed loop until epoch 4 (within 60 s
    of the API answering), none failed, the supply the genesis one after each epoch
    change seen; the fullnode (the API) in the validators' epoch."""
    deadline = time.monotonic() + FOUR_EPOCHS_S
    genesis = client(network, "supply")["genesis"]
    recipient = client(network, "new-address")["address"]
    seen = client(network, "status")["epoch"]
    sent = 0
    supply_checked: set[int] = set()
    while seen < 4 or len(supply_checked) < 3:
        assert time.monotonic() < deadline, f"epoch {seen} after {FOUR_EPOCHS_S} s"
        result = client(network, "transfer", "--to", recipient, "--amount", "3")
        assert result["status"] == "success", result
        sent += 1
        epoch = client(network, "status")["epoch"]
        if epoch != seen:
            # An epoch change since the last look: its fees were paid out.
            seen = epoch
            supply = client(network, "supply")
            assert supply["total"] == supply["genesis"] == genesis, supply
            supply_checked.add(epoch)
    assert client(network, "balance", recipient)[0]["balance"] == 3 * sent
    fullnode = client(network, "status")["epoch"]
    validators = [s.epoch for s in validator_statuses(network)]
    # Validators enter an epoch a moment before the fullnode (which executes the last
    # commit once its certificate is out): the same epoch, or one ahead for that moment.
    assert all(fullnode <= v <= fullnode + 1 for v in validators), (fullnode, validators)


@pytest.mark.parametrize(
    "kills", [1, pytest.param(4, marks=pytest.mark.slow, id="4-kills")], ids=str
)
def test_a_validator_killed_at_its_epoch_change_comes_back(network: Network, kills: int) -> None:
    rng = random.Random(5 + kills)
    victim = network.directory / validator_config_name(1)
    for _ in range(kills):
        pids = _up(network, victim)
        status = client(network, "status")
        end_ms = status["epoch_start_timestamp_ms"] + status["epoch_duration_ms"]
        # Just after the end time: the epoch closes, its last commit is fixed and
        # executed, the change is under way.
        delay = end_ms / 1000 - time.time() + rng.uniform(0.0, 0.6)
        if delay > 0:
            time.sleep(delay)
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        time.sleep(1.0)
    # Restarted by the supervisor (with backoff): back in the network's epoch, on the
    # same chain.
    deadline = time.monotonic() + SETTLE_S
    while True:
        try:
            statuses = validator_statuses(network)
        except Exception:  # the victim may be between two restarts
            statuses = []
        if statuses:
            epochs = {s.epoch for s in statuses}
            if max(epochs) - min(epochs) <= 1 and statuses[1].latest_commit > 0:
                target = min(s.latest_certified_commit for s in statuses)
                if statuses[1].latest_commit >= target:
                    break
        assert time.monotonic() < deadline, f"validator-1 did not come back: {statuses}"
        time.sleep(1.0)
    # Each node checks its own summary of every commit against the certified one and
    # halts with a fork report on any difference: executed past the target with no
    # fork means the same state roots up to it.
    assert all(s.fork is None for s in statuses), statuses


def _up(network: Network, config: Path) -> list[str]:
    """The pids of the node running `config`, once it serves (the supervisor restarts a
    killed node after a backoff)."""
    deadline = time.monotonic() + SETTLE_S
    last: Exception | None = None
    while True:
        pids = subprocess.run(
            ["pgrep", "-f", "--", f"--config {config}"], capture_output=True, text=True
        ).stdout.split()
        if pids:
            try:
                validator_statuses(network)
                return pids
            except Exception as e:
                last = e
        assert time.monotonic() < deadline, f"{config.name} is not running: {pids} {last!r}"
        time.sleep(0.5)
