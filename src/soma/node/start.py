"""`soma start`: a whole local network from one command.

Creates the network's files on first use (or with `force_regenesis`), runs each
validator as its own `soma node` process, and serves the HTTP API with a faucet in this
process. A later run on the same directory resumes from the stored state. SIGINT or
SIGTERM stops everything: the API, then the validators (SIGTERM, then SIGKILL after a
grace period); the validators also die with this process if it is killed, so nothing is
left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from soma.node.local_network import (
    FAUCET_KEY,
    FULLNODE_CONFIG,
    GENESIS_FILE,
    KEYSTORE,
    GenesisArgumentError,
    create_local_network,
    validator_config_name,
)
from soma.rpc.app import create_app
from soma.rpc.faucet import Faucet
from soma.rpc.gateway import Gateway
from soma.rpc.server import RunningApi
from soma.types.config import load_keystore, load_node_config
from soma.types.crypto import AccountKeyPair, read_key_file
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0
_PR_SET_PDEATHSIG = 1


def default_directory() -> Path:
    return Path(os.environ.get("SOMA_DIR") or Path.home() / ".soma" / "network")


#: Set in a validator's environment: the pid of the `soma start` that owns it.
PARENT_PID_ENV = "SOMA_PARENT_PID"


def die_with_parent() -> None:
    """Called by a node at start when `soma start` launched it: get SIGTERM when the
    parent dies (Linux), so a killed `soma start` leaves no validator running. Done in
    the child itself, not through `preexec_fn`: forking a process that runs gRPC threads
    and running Python before exec breaks gRPC's fork handlers."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != parent:
        # The parent died before the request took effect.
        os.kill(os.getpid(), signal.SIGTERM)


def count_validators(root: Path) -> int:
    count = 0
    while (root / validator_config_name(count)).exists():
        count += 1
    return count


def prepare_directory(root: Path, validators: int | None, force_regenesis: bool) -> int:
    """Create the network if needed; returns the number of validators."""
    if force_regenesis and (root / GENESIS_FILE).exists():
        # Only a directory that holds a network is wiped, never an arbitrary one.
        for entry in root.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    if not (root / GENESIS_FILE).exists():
        if root.exists() and any(root.iterdir()):
            raise GenesisArgumentError(f"{root} is not empty and holds no network")
        create_local_network(root, validators=validators or 4)
        return validators or 4
    existing = count_validators(root)
    if validators is not None and validators != existing:
        raise GenesisArgumentError(
            f"{root} holds a network of {existing} validators, not {validators} "
            "(use --force-regenesis to start a new one)"
        )
    return existing


class LocalNetworkRunner:
    def __init__(self, root: Path, validators: int) -> None:
        self.root = root
        self.validators = validators
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs = root / "logs"

    async def start_validators(self) -> None:
        self.logs.mkdir(exist_ok=True)
        for i in range(self.validators):
            log = open(self.logs / f"validator-{i}.log", "ab")  # noqa: SIM115 - child owns it
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "soma",
                        "node",
                        "--config",
                        str(self.root / validator_config_name(i)),
                        "--log-level",
                        "WARNING",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
                )
            )
            log.close()
        for i, proc in enumerate(self.processes):
            assert proc.stdout is not None
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    line = await asyncio.to_thread(proc.stdout.readline)
            except TimeoutError:
                line = b""
            if not line.startswith(b"READY"):
                tail = (self.logs / f"validator-{i}.log").read_text(errors="replace")[-2000:]
                raise SomaError(f"validator {i} did not start:\n{tail}")

    def dead_validators(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p.poll() is not None]

    async def stop_validators(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                await asyncio.to_thread(proc.wait, STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
            if proc.stdout is not None:
                proc.stdout.close()


async def run_local_network(
    root: Path,
    validators: int | None = None,
    force_regenesis: bool = False,
    on_ready: Callable[[str, list[str]], None] | None = None,
) -> int:
    count = prepare_directory(root, validators, force_regenesis)
    fullnode = load_node_config(root / FULLNODE_CONFIG)
    assert fullnode.api_address is not None
    host, _, port = fullnode.api_address.rpartition(":")
    runner = LocalNetworkRunner(root, count)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    gateway: Gateway | None = None
    api: RunningApi | None = None
    status = 0
    try:
        await runner.start_validators()
        addresses = [
            load_node_config(root / validator_config_name(i)).network_address for i in range(count)
        ]
        gateway = await Gateway.connect(addresses)
        faucet = Faucet(gateway, read_key_file(root / FAUCET_KEY, AccountKeyPair))
        api = RunningApi(create_app(gateway, faucet), host, int(port))
        await api.start()
        funded = [k.public_key.to_address().to_hex() for k in load_keystore(root / KEYSTORE)]
        if on_ready is not None:
            on_ready(f"http://{fullnode.api_address}", funded)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            dead = runner.dead_validators()
            if dead:
                logger.error("validators %s exited; see %s", dead, runner.logs)
                if len(dead) * 3 >= count:
                    status = 1
                    break
    finally:
        if api is not None:
            await api.stop()
        if gateway is not None:
            await gateway.close()
        await runner.stop_validators()
    return status
