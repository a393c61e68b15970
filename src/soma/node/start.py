"""`soma start`: a whole local network from one command.

The flow, in order:

1. `prepare_network` (the caller holds the directory's lock, see `soma.node.dir_lock`):
   on first use, or with `force_regenesis` after checking that the directory holds a
   network and nothing else, write a new network; otherwise check the one there. Done
   with Ctrl-C held back, so a network is never left half written or half deleted.
2. `run_local_network`: each validator runs as its own `soma node` process in its own
   session (a Ctrl-C in the terminal reaches `soma start` alone, which then stops the
   validators in order), holding the directory's lock with it; the HTTP API with a
   faucet runs in this process.
3. SIGINT or SIGTERM at any moment, during start-up too, stops everything: the API,
   then the validators (SIGTERM, then SIGKILL after a grace period), and returns
   128 + the signal's number. The validators also die with this process if it is
   killed, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from soma.node.layout import (
    FAUCET_KEY,
    FULLNODE_CONFIG,
    GENESIS_FILE,
    KEYSTORE,
    LOGS_DIR,
    count_validators,
    validator_config_name,
)
from soma.node.local_network import GenesisArgumentError, create_local_network, remove_network
from soma.node.parent import PARENT_PID_ENV
from soma.orchestrator.faucet import Faucet
from soma.orchestrator.remote_reader import RemoteReader
from soma.rpc.app import create_app
from soma.rpc.limits import ApiLimits
from soma.rpc.server import ApiPortTakenError, RunningApi, listen
from soma.types.config import load_keystore, load_node_config
from soma.types.crypto import AccountKeyPair, read_key_file
from soma.types.error import SomaError
from soma.utils.interrupt import deferred_interrupts

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0
DEFAULT_VALIDATORS = 4


class NodeStartError(SomaError):
    code = "NODE_START_FAILED"


def prepare_network(root: Path, validators: int | None, force_regenesis: bool) -> int:
    """Make sure `root` holds a network (the caller holds its lock); returns the number
    of validators."""
    with deferred_interrupts():
        if force_regenesis:
            remove_network(root)
        if not (root / GENESIS_FILE).exists():
            count = validators or DEFAULT_VALIDATORS
            create_local_network(root, validators=count)
            return count
    existing = count_validators(root)
    if validators is not None and validators != existing:
        raise GenesisArgumentError(
            f"{root} holds a network of {existing} validators, not {validators} "
            "(use --force-regenesis to start a new one)"
        )
    return existing


class LocalNetworkRunner:
    """The validator processes of one network."""

    def __init__(self, root: Path, validators: int, lock_fd: int | None = None) -> None:
        self.root = root
        self.validators = validators
        self.lock_fd = lock_fd
        self.processes: list[asyncio.subprocess.Process] = []
        self.logs = root / LOGS_DIR

    def log_path(self, index: int) -> Path:
        return self.logs / f"validator-{index}.log"

    async def start_validators(self) -> None:
        """Launch every validator, then wait until each says it is ready."""
        self.logs.mkdir(exist_ok=True)
        offsets = []
        for i in range(self.validators):
            path = self.log_path(i)
            offsets.append(path.stat().st_size if path.exists() else 0)
            with path.open("ab") as log:
                self.processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "soma",
                        "node",
                        "--config",
                        str(self.root / validator_config_name(i)),
                        "--log-level",
                        "WARNING",
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=log,
                        env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
                        start_new_session=True,
                        pass_fds=() if self.lock_fd is None else (self.lock_fd,),
                    )
                )
        await asyncio.gather(*(self._ready(i, offsets[i]) for i in range(self.validators)))

    async def _ready(self, index: int, log_offset: int) -> None:
        stdout = self.processes[index].stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                line = await stdout.readline()
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY"):
            raise NodeStartError(
                f"validator {index} did not start: {self._cause(index, log_offset)} "
                f"(log: {self.log_path(index)})"
            )

    def _cause(self, index: int, log_offset: int) -> str:
        """The last line this start wrote to the validator's log (not an older run's)."""
        try:
            with self.log_path(index).open("rb") as log:
                log.seek(log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            text = ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else "it exited without a message"

    def dead_validators(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p.returncode is not None]

    async def stop_validators(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                async with asyncio.timeout(STOP_GRACE_S):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def run_local_network(
    root: Path,
    validators: int,
    lock_fd: int | None = None,
    on_ready: Callable[[str, list[str]], None] | None = None,
) -> int:
    """Run the network in `root` until a signal (returns 128 + its number) or until a
    third of the validators have died (returns 1)."""
    fullnode = load_node_config(root / FULLNODE_CONFIG)
    assert fullnode.api_address is not None
    host, _, port = fullnode.api_address.rpartition(":")
    runner = LocalNetworkRunner(root, validators, lock_fd)
    stop = asyncio.Event()
    received: list[int] = []
    starting = asyncio.current_task()

    def on_signal(signum: int) -> None:
        if received:
            return
        received.append(signum)
        stop.set()
        if starting is not None:
            starting.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    gateway: RemoteReader | None = None
    api: RunningApi | None = None
    status = 0
    # The API's port is taken now, before the validators start (their outgoing
    # connections use ephemeral ports too): refused at once if another program has it.
    try:
        listener = listen(host, int(port))
    except ApiPortTakenError as e:
        raise ApiPortTakenError(
            f"{e.message}, taken since the ports were checked: run `soma start` again (it "
            f"moves a port it chose), or change api_address in {fullnode.path}"
        ) from None
    try:
        try:
            await runner.start_validators()
            configs = [load_node_config(root / validator_config_name(i)) for i in range(validators)]
            # The configs say where the validators listen, even where a port moved after
            # genesis and the committee still lists the old one.
            gateway = await RemoteReader.connect(
                [c.network_address for c in configs],
                {c.keys.authority.name: c.network_address for c in configs if c.keys.authority},
            )
            faucet = Faucet(gateway, read_key_file(root / FAUCET_KEY, AccountKeyPair))
            limits = ApiLimits.from_config(fullnode.api_limits, str(fullnode.path))
            api = RunningApi(create_app(gateway, faucet, limits), host, int(port), listener)
            await api.start()
            starting = None
        except asyncio.CancelledError:
            if not received:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        if not received:
            funded = [k.public_key.to_address().to_hex() for k in load_keystore(root / KEYSTORE)]
            if on_ready is not None:
                on_ready(f"http://{fullnode.api_address}", funded)
            status = await _watch(runner, stop)
    finally:
        # `on_signal` stays in place: a second Ctrl-C during this shutdown is ignored.
        if api is not None:
            await api.stop()
        listener.close()
        if gateway is not None:
            await gateway.close()
        await runner.stop_validators()
    return 128 + received[0] if received else status


async def _watch(runner: LocalNetworkRunner, stop: asyncio.Event) -> int:
    """Wait for a signal; 1 if a third of the validators died first."""
    count = runner.validators
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()
        dead = runner.dead_validators()
        if dead:
            logger.error("validators %s exited; see %s", dead, runner.logs)
            if len(dead) * 3 >= count:
                return 1
    return 0
