"""`soma start` in a subprocess: it serves the API and prints funded addresses, the
faucet funds a fresh address, Ctrl-C stops everything with no process left, a restart
keeps the balances, and two networks in two directories run side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from soma.rpc.faucet import DEFAULT_GRANT

START_TIMEOUT_S = 60.0


class Network:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "soma", "start", "--dir", str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.api = ""
        self.funded: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("API "):
                self.api = line.split()[1]
            elif line.startswith("funded "):
                self.funded.append(line.split()[1])
            elif line.startswith("press Ctrl-C"):
                return
        self.stop()
        raise AssertionError(f"soma start did not come up: {self.stderr()}")

    def stderr(self) -> str:
        return "" if self.proc.stderr is None else self.proc.stderr.read().decode()[-3000:]

    def call(self, path: str, body: object | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def balance(self, address: str) -> int:
        status, body = self.call(f"/addresses/{address}/balance")
        assert status == 200, body
        return int(body["balance"])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def processes_of(directory: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", str(directory)], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


def test_soma_start_faucet_stop_restart_and_two_networks(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first = Network(first_dir)
    second: Network | None = None
    try:
        assert first.api.startswith("http://127.0.0.1:") and len(first.funded) >= 1
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
            out = subprocess.run(
                [sys.executable, "-m", "soma", "client", "--json", "--dir", str(first_dir), *args],
                capture_output=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr.decode()
            return json.loads(out.stdout)

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
        kept = first.balance(first.funded[0])
        assert kept == funded_balance - 10 - sent["fee"]

        second = Network(second_dir)
        assert second.api != first.api
        assert second.call("/health")[0] == 200 and first.call("/health")[0] == 200
        assert second.stop() == 0
        second = None
        assert not processes_of(second_dir)
    finally:
        if second is not None:
            second.stop()
        code = first.stop()
    assert code == 0
    assert not processes_of(first_dir)

    again = Network(first_dir)
    try:
        assert again.api == first.api
        assert again.balance(fresh) == DEFAULT_GRANT
        assert again.balance(first.funded[0]) == kept
        status, grant = again.call("/faucet", {"address": fresh})
        assert status == 200 and grant["status"] == "success"
        assert again.balance(fresh) == 2 * DEFAULT_GRANT
    finally:
        assert again.stop() == 0
    assert not processes_of(first_dir)
