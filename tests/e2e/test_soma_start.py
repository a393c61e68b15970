"""`soma start` in a subprocess: it serves the API and prints funded addresses (and each
node's metrics URL: every node's metrics move as it works), the faucet funds a fresh
address, Ctrl-C stops everything with no process left, a restart
keeps the balances, and two networks in two directories run side by side. Its output
to a pipe is plain lines (metrics URLs, the logs directory, status lines); each node
logs to a file of the network's directory, one JSON object a line with `--log-format
json`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from soma.orchestrator.faucet import DEFAULT_GRANT
from tests.e2e.local_network import Network, client_json, processes_of
from tests.e2e.prometheus import assert_metrics_moved, scrape_network


def test_soma_start_faucet_stop_restart_and_two_networks(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first = Network(first_dir)
    second: Network | None = None
    try:
        assert first.api.startswith("http://127.0.0.1:") and len(first.funded) >= 1
        assert_plain_banner(first)
        scraped = scrape_network(first_dir)
        status, health = first.call("/health")
        assert status == 200 and health["status"] == "ok"
        funded_balance = first.balance(first.funded[0])
        assert funded_balance > 0
        fresh = "0x" + "ab" * 32
        assert first.balance(fresh) == 0
        status, grant = first.call("/faucet", {"address": fresh})
        assert status == 200 and grant["status"] == "success", grant
        assert first.balance(fresh) > 0
        status, err = first.call("/faucet", {"address": "nonsense"})
        assert status == 400 and err["code"] == "INVALID_ADDRESS"

        # The client CLI finds the network through --dir.
        def client(*args: str) -> Any:
            return client_json(first_dir, *args)

        before = {row["address"]: row["balance"] for row in client("balance")}
        assert all(isinstance(v, int) and v > 0 for v in before.values())
        new = client("new-address")["address"]
        sent = client("transfer", "--to", new, "--amount", "10")
        assert sent["status"] == "success" and sent["digest"] and sent["fee"] > 0
        after = {row["address"]: row["balance"] for row in client("balance")}
        sender_address = next(iter(before))
        assert after[sender_address] == before[sender_address] - 10 - sent["fee"]
        assert after[new] == 10
        assert client("status")["latest_commit"] > 0
        # Every node's metrics moved meanwhile (rounds, commits, transactions, requests).
        assert_metrics_moved(scraped, scrape_network(first_dir))
        kept = first.balance(first.funded[0])
        assert kept == funded_balance - 10 - sent["fee"]

        second = Network(second_dir, "--log-format", "json", "--log-level", "debug")
        assert second.api != first.api
        assert second.call("/health")[0] == 200 and first.call("/health")[0] == 200
        assert second.stop() == 130
        second = None
        assert not processes_of(second_dir)
        assert_json_logs(second_dir)
    finally:
        if second is not None:
            second.stop()
        code = first.stop()
    assert code == 130
    assert not processes_of(first_dir)
    assert first.proc.stdout is not None
    after = first.proc.stdout.read().decode()  # a status line every 10 s, if it ran as long
    assert all(line.startswith("status epoch=") for line in after.splitlines()), after
    assert "\x1b" not in after and "\r" not in after
    # INFO lines reach the nodes' logs (the default level), and they are few.
    logs = first_dir / "logs"
    fullnode_log = (logs / "fullnode.log").read_text()
    assert "INFO soma.node.fullnode: fullnode following epoch" in fullnode_log
    assert all(path.stat().st_size < 200_000 for path in logs.glob("*.log"))

    again = Network(first_dir)
    try:
        assert again.api == first.api
        assert again.balance(fresh) == DEFAULT_GRANT
        assert again.balance(first.funded[0]) == kept
        status, grant = again.call("/faucet", {"address": fresh})
        assert status == 200 and grant["status"] == "success"
        assert again.balance(fresh) == 2 * DEFAULT_GRANT
    finally:
        assert again.stop() == 130
    assert not processes_of(first_dir)


def assert_plain_banner(network: Network) -> None:
    """Plain lines only (no escape code, no carriage return): the metrics URL of each
    node, then the logs directory, before `press Ctrl-C to stop`."""
    text = "".join(network.banner)
    assert "\x1b" not in text and "\r" not in text, text
    lines = text.splitlines()
    assert lines[0] == f"soma network in {network.directory}"
    metrics = [line.split() for line in lines if line.startswith("metrics ")]
    assert [m[1] for m in metrics] == [f"validator-{i}" for i in range(4)] + ["fullnode"]
    assert all(m[2].startswith("http://127.0.0.1:") for m in metrics), metrics
    assert lines[-2:] == [f"logs {network.directory / 'logs'}", "press Ctrl-C to stop"]


def assert_json_logs(directory: Path) -> None:
    """Every node's log: one JSON object a line, the nodes' INFO lines among them."""
    files = sorted((directory / "logs").glob("*.log"))
    assert [f.stem for f in files] == ["fullnode"] + [f"validator-{i}" for i in range(4)]
    for path in files:
        lines = path.read_text().splitlines()
        assert lines, path
        records = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["level"] == "INFO" for r in records), records


def soma(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soma", *args], capture_output=True, text=True, timeout=timeout
    )


def test_a_running_network_cannot_be_regenesised_or_started_twice(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    network = Network(directory)
    try:
        funded = network.funded[0]
        before = network.balance(funded)
        for args in (
            ["start", "--dir", str(directory), "--force-regenesis"],
            ["start", "--dir", str(directory)],
            ["genesis", "--dir", str(directory)],
        ):
            refused = soma(*args)
            assert refused.returncode == 1, refused
            assert refused.stdout == ""
            assert refused.stderr == (
                f"error: network in {directory} is running (pid {network.proc.pid})\n"
            )
        # Unharmed: it still serves, with the same state.
        assert network.balance(funded) == before
        status, grant = network.call("/faucet", {"address": "0x" + "cd" * 32})
        assert status == 200 and grant["status"] == "success"
    finally:
        assert network.stop() == 130
    assert not processes_of(directory)
    again = Network(directory)
    try:
        assert again.balance(funded) == before
        assert again.balance("0x" + "cd" * 32) == DEFAULT_GRANT
    finally:
        again.stop()


def test_ctrl_c_at_any_moment_of_start_up_stops_everything(tmp_path: Path) -> None:
    for i, delay in enumerate((0.5, 2.0, 4.0)):
        directory = tmp_path / f"net-{i}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "soma", "start", "--dir", str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, (delay, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (delay, err)
        assert not processes_of(directory), delay
