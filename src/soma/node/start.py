"""`soma start`: a whole local network from one command.

The flow, in order:

1. `prepare_network` (the caller holds the directory's lock, see `soma.node.dir_lock`):
   on first use, or with `force_regenesis` after checking that the directory holds a
   network and nothing else, write a new network; otherwise check the one there. Done
   with Ctrl-C held back, so a network is never left half written or half deleted.
2. `run_local_network`: each validator, then the fullnode, runs as its own `soma node`
   process in its own session (a Ctrl-C in the terminal reaches `soma start` alone,
   which then stops the nodes in order), holding the directory's lock with it. The
   fullnode follows the validators by state sync and serves the HTTP API with a faucet.
3. While it runs, a node that dies is started again on its store, with backoff
   (`soma.node.supervisor`).
4. SIGINT or SIGTERM at any moment, during start-up too, stops everything: the
   fullnode, then the validators (SIGTERM, then SIGKILL after a grace period), and
   returns 128 + the signal's number. The nodes also die with this process if it is
   killed, so nothing is left behind.

Each node logs to `<dir>/logs/<name>.log` (appended to across runs) at the level and in
the format the runner was given: `soma start` passes its `--log-level`/`--log-format`
(INFO by default); benchmarks keep the runner's default, WARNING, so logging costs
their measurements nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from soma.node.layout import (
    FULLNODE_CONFIG,
    GENESIS_FILE,
    KEYSTORE,
    LOGS_DIR,
    count_validators,
    validator_config_name,
)
from soma.node.local_network import (
    GenesisArgumentError,
    create_local_network,
    genesis_system_state,
    read_genesis,
    remove_network,
    upgrade_node_configs,
)
from soma.node.parent import PARENT_PID_ENV
from soma.node.supervisor import Supervisor
from soma.types.config import load_keystore, load_node_config
from soma.types.error import SomaError
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.system_state import SystemParameters
from soma.utils.interrupt import deferred_interrupts
from soma.utils.log_setup import LogSettings

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0
DEFAULT_VALIDATORS = 4
#: The name of the network's fullnode process (and its log).
FULLNODE_NAME = "fullnode"
#: How the nodes of a benchmark's network log (warnings and errors only).
QUIET_LOGS = LogSettings("WARNING")


class NodeStartError(SomaError):
    code = "NODE_START_FAILED"


@dataclasses.dataclass(frozen=True)
class GenesisChoices:
    """What `soma start` was asked to put in a new network's genesis (None: the
    default). An existing network must already have what was asked: its genesis is
    never rewritten behind the user's back."""

    epoch_duration_ms: int | None = None
    min_validator_stake: int | None = None

    def mismatches(self, parameters: SystemParameters) -> list[str]:
        """How an existing network's parameters differ from these choices."""
        out = []
        for field, flag in (
            ("epoch_duration_ms", "--epoch-duration-ms"),
            ("min_validator_stake", "--min-validator-stake"),
        ):
            wanted = getattr(self, field)
            held = getattr(parameters, field)
            if wanted is not None and wanted != held:
                out.append(f"{flag} {held}, not {wanted}")
        return out


def prepare_network(
    root: Path,
    validators: int | None,
    force_regenesis: bool,
    choices: GenesisChoices | None = None,
) -> int:
    """Make sure `root` holds a network (the caller holds its lock); returns the number
    of validators."""
    choices = choices or GenesisChoices()
    with deferred_interrupts():
        if force_regenesis:
            remove_network(root)
        if not (root / GENESIS_FILE).exists():
            count = validators or DEFAULT_VALIDATORS
            create_local_network(
                root,
                validators=count,
                epoch_duration_ms=_or(
                    choices.epoch_duration_ms, DEFAULT_PARAMETERS.epoch_duration_ms
                ),
                min_validator_stake=_or(
                    choices.min_validator_stake, DEFAULT_PARAMETERS.min_validator_stake
                ),
            )
            return count
    upgrade_node_configs(root)
    existing = count_validators(root)
    if validators is not None and validators != existing:
        raise GenesisArgumentError(
            f"{root} holds a network of {existing} validators, not {validators} "
            "(use --force-regenesis to start a new one)"
        )
    mismatches = choices.mismatches(
        genesis_system_state(read_genesis(root / GENESIS_FILE)).parameters
    )
    if mismatches:
        raise GenesisArgumentError(
            f"{root} holds a network made with {'; '.join(mismatches)} "
            "(use --force-regenesis to start a new one)"
        )
    return existing


def _or(chosen: int | None, default: int) -> int:
    return default if chosen is None else chosen


class LocalNetworkRunner:
    """The node processes of one network: its validators, and its fullnode."""

    def __init__(
        self,
        root: Path,
        validators: int,
        lock_fd: int | None = None,
        log_settings: LogSettings = QUIET_LOGS,
    ) -> None:
        self.root = root
        self.validators = validators
        self.lock_fd = lock_fd
        self.log_settings = log_settings
        #: Node name (`validator-<i>`, `fullnode`) -> its process, in launch order.
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        #: Node name -> its config file.
        self.configs: dict[str, Path] = {}
        self.logs = root / LOGS_DIR

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    async def start_validators(self) -> None:
        """Launch every validator, then wait until each says it is ready."""
        await self._start(
            {f"validator-{i}": self.root / validator_config_name(i) for i in range(self.validators)}
        )

    async def start_fullnode(self) -> None:
        """Launch the network's fullnode (it serves the HTTP API) and wait for it."""
        await self._start({FULLNODE_NAME: self.root / FULLNODE_CONFIG})

    async def start_node(self, name: str, config: Path) -> None:
        """Launch one more node (a benchmark's fullnode) and wait for it."""
        await self._start({name: config})

    async def restart(self, name: str) -> None:
        """Start node `name` again on its store (it exited) and wait until it is ready;
        `NodeStartError` with this start's cause if it is not (it is stopped then)."""
        try:
            await self._start({name: self.configs[name]})
        except NodeStartError:
            proc = self.processes[name]
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise

    async def _start(self, nodes: dict[str, Path]) -> None:
        self.logs.mkdir(exist_ok=True)
        offsets = {}
        for name, config in nodes.items():
            self.configs[name] = config
            path = self.log_path(name)
            offsets[name] = path.stat().st_size if path.exists() else 0
            with path.open("ab") as log:
                self.processes[name] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "soma",
                    "node",
                    "--config",
                    str(config),
                    *self.log_settings.node_args(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
                    start_new_session=True,
                    pass_fds=() if self.lock_fd is None else (self.lock_fd,),
                )
        await asyncio.gather(*(self._ready(name, offsets[name]) for name in nodes))

    async def _ready(self, name: str, log_offset: int) -> None:
        stdout = self.processes[name].stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                line = await stdout.readline()
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY"):
            raise NodeStartError(
                f"{name} did not start: {self._cause(name, log_offset)} "
                f"(log: {self.log_path(name)})"
            )

    def _cause(self, name: str, log_offset: int) -> str:
        """The last line this start wrote to the node's log (not an older run's)."""
        try:
            with self.log_path(name).open("rb") as log:
                log.seek(log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            text = ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else "it exited without a message"

    def dead(self) -> list[str]:
        """The nodes that exited."""
        return [name for name, p in self.processes.items() if p.returncode is not None]

    async def stop(self) -> None:
        """Stop every node: the fullnode first (it reads from the validators), then the
        validators; SIGTERM, then SIGKILL after a grace period."""
        ordered = sorted(self.processes.items(), key=lambda item: item[0] != FULLNODE_NAME)
        for _, proc in ordered:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for _, proc in ordered:
            try:
                async with asyncio.timeout(STOP_GRACE_S):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    # Kept for callers that run validators only (benchmarks).
    stop_validators = stop


async def run_local_network(
    root: Path,
    validators: int,
    lock_fd: int | None = None,
    on_ready: Callable[[str, list[str]], None] | None = None,
    log_settings: LogSettings | None = None,
    alongside: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run the network in `root` until a signal (returns 128 + its number), restarting
    any node that dies meanwhile. `alongside` (a dashboard) runs as a task from
    `on_ready` until the signal, when it is cancelled; its failure stops nothing."""
    fullnode = load_node_config(root / FULLNODE_CONFIG)
    runner = LocalNetworkRunner(root, validators, lock_fd, log_settings or LogSettings())
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
    status = 0
    try:
        try:
            await runner.start_validators()
            await runner.start_fullnode()
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
            status = await _watch(runner, stop, alongside)
    finally:
        # `on_signal` stays in place: a second Ctrl-C during this shutdown is ignored.
        await runner.stop()
    return 128 + received[0] if received else status


async def _watch(
    runner: LocalNetworkRunner,
    stop: asyncio.Event,
    alongside: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Keep the nodes up (`Supervisor`) until a signal, `alongside` running beside."""
    task = None if alongside is None else asyncio.ensure_future(alongside())
    if task is not None:
        task.add_done_callback(_report_failure)
    try:
        await Supervisor(runner).run(stop)
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return 0


def _report_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("stopped showing the network's status", exc_info=task.exception())
