"""The committee stress test of issue 15: 7 validators, 6 candidates, three rounds of
"add 2, remove 2" while the network runs.

Each candidate comes from `soma validator new` and runs as its own `soma node` from the
start (following the chain by state sync until it joins). Each round sends two joins and
two leaves at the start of an epoch, so that one epoch change applies them together, and
waits for a committee of exactly the 7 expected members: the 2 added in, the 2 removed
out, everyone else as before. Round 1 removes founders; rounds 2 and 3 each remove a
candidate that joined in the round before, so a node is seen both joining and leaving.
The supply stays the genesis supply after every round; at the end every node process is
the one started at the beginning (none died, none was restarted by `soma start`), and
the removed nodes go on following the chain.

Slow: 14 node processes (7 validators, the fullnode, 6 candidates) share the machine.
"""

from __future__ import annotations

import dataclasses
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from soma.node.layout import validator_config_name
from soma.types.config import load_node_config
from tests.e2e.local_network import Network, node_status, processes_of

VALIDATORS = 7
CANDIDATES = 6
#: Epochs of 10 s: each round sends its four transactions right after an epoch change
#: and wants them all executed in that epoch, so the epoch must outlast four `soma
#: client` processes started at once (each imports the SDK and waits for its effects).
#: With 14 nodes on two cores that takes 5 to 8 s; 5 s epochs (test_committee_change)
#: would split a round's changes over two epoch changes.
EPOCH_MS = 10_000
#: Liveness bounds of each wait (never performance assertions): a round's changes take
#: effect within two epoch changes; an epoch change can take a few seconds under load.
WAIT_S = 150.0
READY_S = 120.0
#: Each round: the candidates that join, the members that leave.
ROUNDS: list[tuple[tuple[str, str], tuple[str, str]]] = [
    (("cand-0", "cand-1"), ("validator-0", "validator-1")),
    (("cand-2", "cand-3"), ("cand-0", "validator-2")),
    (("cand-4", "cand-5"), ("cand-2", "validator-3")),
]
LOG_LINES = 15

T = TypeVar("T")


@dataclasses.dataclass
class Node:
    """A validator of the test, founder or candidate, by the label the rounds use."""

    label: str
    config: Path
    #: Its authority name, as the committee lists it.
    name: str
    #: A candidate's account (as `soma validator new` printed it), own process and log
    #: (a founder's process and log are `soma start`'s).
    account: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


def soma(*args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "soma", *args], capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def authority_name(config: Path) -> str:
    authority = load_node_config(config).keys.authority
    assert authority is not None, config
    return str(authority.name)


@pytest.mark.slow
def test_three_rounds_of_add_two_remove_two(tmp_path: Path) -> None:
    root = tmp_path / "net"
    network = Network(root, "--validators", str(VALIDATORS), "--epoch-duration-ms", str(EPOCH_MS))
    nodes: dict[str, Node] = {}
    logs: list[IO[bytes]] = []

    def client(*args: str) -> Any:
        return soma("client", "--json", "--dir", str(root), *args)

    def diagnosis() -> str:
        """The tails of every log: the network's stderr, its nodes' logs (warnings and
        up) and the candidates' logs (info and up)."""
        parts = [f"== soma start stderr ==\n{network.stderr()[-1500:]}"]
        paths = sorted((root / "logs").glob("*.log"))
        paths += [node.log for node in nodes.values() if node.log is not None]
        for path in paths:
            lines = path.read_text(errors="replace").splitlines()[-LOG_LINES:]
            parts.append(f"== {path.name if path.parent.name == 'logs' else path} ==")
            parts.extend(lines)
        return "\n".join(parts)

    def wait_for(what: str, check: Callable[[], T | None]) -> T:
        deadline = time.monotonic() + WAIT_S
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not in {WAIT_S} s: {what}\n{diagnosis()}")
            time.sleep(0.5)

    def epoch_after(epoch: int) -> Callable[[], bool]:
        return lambda: client("status")["epoch"] > epoch

    def moved_on(config: Path, commit: int) -> Callable[[], bool]:
        return lambda: node_status(config).latest_commit > commit + 5

    try:
        genesis = client("supply")["genesis"]
        for i in range(VALIDATORS):
            config = root / validator_config_name(i)
            nodes[f"validator-{i}"] = Node(f"validator-{i}", config, authority_name(config))
        founders = node_pids(root)
        assert len(founders) == VALIDATORS + 1, founders  # and the fullnode

        # Six candidates, each its own node from the start (all of them follow the chain
        # by state sync until they join).
        for i in range(CANDIDATES):
            label = f"cand-{i}"
            written = soma(
                "validator", "new", "--dir", str(root), "--out", str(tmp_path / label), "--json"
            )
            config = Path(written["config"])
            log_path = tmp_path / f"{label}.log"
            log = log_path.open("wb")
            logs.append(log)
            proc = subprocess.Popen(
                [sys.executable, "-m", "soma", "node", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=log,
            )
            nodes[label] = Node(
                label, config, authority_name(config), written["address"], proc, log_path
            )
        for node in nodes.values():
            if node.proc is not None:
                line = read_line(node.proc, READY_S)
                assert line.startswith(b"READY"), f"{node.label}: {line!r}\n{diagnosis()}"

        members = {nodes[f"validator-{i}"].name for i in range(VALIDATORS)}
        assert {m["name"] for m in client("committee")["members"]} == members
        for number, (added, removed) in enumerate(ROUNDS, start=1):
            assert all(nodes[label].name not in members for label in added)
            assert all(nodes[label].name in members for label in removed)
            # Right after an epoch change, so all four execute in the same epoch.
            epoch = client("status")["epoch"]
            wait_for("an epoch change", epoch_after(epoch))
            results = clients_at_once(
                root,
                [["validator", "join", "--config", str(nodes[label].config)] for label in added]
                + [
                    ["validator", "leave", "--config", str(nodes[label].config)]
                    for label in removed
                ],
            )
            for result in results:
                assert result["status"] == "success", result
            executed = sorted({result["effects"]["executed_epoch"] for result in results})
            members = (members - {nodes[label].name for label in removed}) | {
                nodes[label].name for label in added
            }

            def changed(expected: set[str] = members) -> dict[str, Any] | None:
                committee: dict[str, Any] = client("committee")
                names = {m["name"] for m in committee["members"]}
                return committee if names == expected else None

            committee = wait_for(f"round {number}: the committee of {sorted(members)}", changed)
            hostnames = sorted(m["hostname"] for m in committee["members"])
            # Shown with -s: where the round's transactions landed, when they took effect.
            print(f"round {number}: sent in {executed}, epoch {committee['epoch']}: {hostnames}")
            # The acceptance line, as the committee lists it: 7, the added in, the removed out.
            assert len(committee["members"]) == VALIDATORS
            names = [m["name"] for m in committee["members"]]
            assert all(nodes[label].name in names for label in added)
            assert all(nodes[label].name not in names for label in removed)
            assert committee["epoch"] > max(executed)
            accounts = {m["account"] for m in committee["members"]}
            assert len(accounts) == VALIDATORS
            assert all(nodes[label].account in accounts for label in added)
            assert client("supply")["total"] == genesis

        # Every node process is still the one started: none died, none was restarted.
        assert network.proc.poll() is None, diagnosis()
        assert node_pids(root) == founders, f"{founders}\n{diagnosis()}"
        for node in nodes.values():
            if node.proc is not None:
                assert node.proc.poll() is None, f"{node.label} exited\n{diagnosis()}"

        # The removed nodes, candidates and founders, go on following the chain: each
        # one's own status (its validator service) moves on.
        epoch = client("status")["epoch"]
        for label in sorted({label for _, removed in ROUNDS for label in removed}):
            config = nodes[label].config
            first = node_status(config)
            assert first.epoch >= epoch - 1, (label, first)
            wait_for(f"{label} to follow the chain", moved_on(config, first.latest_commit))
    finally:
        for node in nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in nodes.values():
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
        for stream in logs:
            stream.close()
        network.stop()


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The node's first line of stdout, waited for at most `timeout` seconds (a node that
    hangs before READY must fail the test, not hang it)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else b""


def clients_at_once(root: Path, commands: list[list[str]]) -> list[Any]:
    """`soma client` for each command, all started together (one after another they take
    longer than a loaded epoch), their JSON results in order."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "soma", "client", "--json", "--dir", str(root), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    try:
        outs = [proc.communicate(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = []
    for command, proc, (stdout, stderr) in zip(commands, procs, outs, strict=True):
        assert proc.returncode == 0, (command, stdout, stderr)
        results.append(json.loads(stdout))
    return results


def node_pids(root: Path) -> dict[str, int]:
    """The pid of each node process that `soma start` runs in `root`, by config."""
    pids = {}
    for line in processes_of(root):
        words = line.split()
        if "node" in words and "--config" in words:
            pids[words[words.index("--config") + 1]] = int(words[0])
    return pids
