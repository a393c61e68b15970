"""A `soma start` network in a subprocess, for end-to-end tests: its API URL and funded
addresses as it printed them, JSON calls, and a Ctrl-C stop."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0


class Network:
    def __init__(self, directory: Path, *args: str) -> None:
        """`soma start --dir directory *args`."""
        self.directory = directory
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "soma", "start", "--dir", str(directory), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.api = ""
        self.funded: list[str] = []
        #: What it printed up to `press Ctrl-C to stop`, line by line (newlines kept).
        self.banner: list[str] = []
        # stderr is read all along (a full pipe would stall the network), last 3000 kept.
        self._stderr: collections.deque[str] = collections.deque(maxlen=3000)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            self.banner.append(line)
            if line.startswith("API "):
                self.api = line.split()[1]
            elif line.startswith("funded "):
                self.funded.append(line.split()[1])
            elif line.startswith("press Ctrl-C"):
                return
        self.stop()
        raise AssertionError(f"soma start did not come up: {self.stderr()}")

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):  # type: ignore[union-attr]
            self._stderr.extend(chunk.decode(errors="replace"))

    def stderr(self) -> str:
        """What the network wrote to stderr so far (the last 3000 characters)."""
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)
        return "".join(self._stderr)

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


def node_status(config: Path) -> Any:
    """A node's own status, from its validator service (a validator, or a validator
    config following the chain)."""
    from soma.node.local_network import validator_client
    from soma.types.config import load_node_config

    async def ask() -> Any:
        service = validator_client(load_node_config(config))
        try:
            return await service.get_status()
        finally:
            await service.close()

    return asyncio.run(ask())


def client_json(directory: Path, *args: str) -> Any:
    """`soma client --json --dir directory *args`: its JSON answer (it must succeed)."""
    out = subprocess.run(
        [sys.executable, "-m", "soma", "client", "--json", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
