"""`soma start` keeps its network up: a validator or the fullnode that dies is started
again on its store (one log line each), and the network goes on serving; only Ctrl-C
stops it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.e2e.local_network import Network, processes_of

TIMEOUT_S = 60.0


def _pid_of(directory: Path, config: str) -> int | None:
    for line in processes_of(directory):
        pid, _, command = line.partition(" ")
        if " node " in f" {command} " and f" --config {config} " in f"{command} ":
            return int(pid)
    return None


def _until(check: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


def _answers(network: Network) -> bool:
    try:
        return network.call("/status")[0] == 200
    except OSError:  # the fullnode, which serves the API, is restarting
        return False


def test_a_node_that_dies_is_restarted_and_the_network_goes_on(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    network = Network(directory)
    try:
        for config in ("validator-1.yaml", "fullnode.yaml"):
            old = _pid_of(directory, str(directory / config))
            assert old is not None, processes_of(directory)
            os.kill(old, signal.SIGKILL)

            def replaced(config: str = config, old: int = old) -> bool:
                new = _pid_of(directory, str(directory / config))
                return new is not None and new != old

            _until(replaced, f"{config}'s node is started again")
            _until(lambda: _answers(network), "the API answers again")
        assert network.proc.poll() is None
        # The network still takes writes through the restarted fullnode, and the
        # restarted validator takes part (the faucet's transfer needs 3 of the 4).
        paused = _pid_of(directory, str(directory / "validator-3.yaml"))
        assert paused is not None
        os.kill(paused, signal.SIGSTOP)
        try:
            fresh = "0x" + "ab" * 32
            status, body = network.call("/faucet", {"address": fresh})
            assert status == 200, body
            assert network.balance(fresh) > 0
        finally:
            os.kill(paused, signal.SIGCONT)
    finally:
        code = network.stop()
    stderr = network.stderr()
    assert code == 130, stderr
    assert "validator-1 exited (status -9)" in stderr, stderr
    assert "fullnode exited (status -9)" in stderr, stderr
    assert "restarting it in 1 s" in stderr
    assert not processes_of(directory)
