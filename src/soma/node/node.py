"""SomaNode: one validator process, assembled from its config.

Perpetual parts live as long as the process: the authority store, the validator
service and the P2P service (discovery). Everything that belongs to one epoch (the
epoch store, the AuthorityState over it, the consensus store and ConsensusAuthority) is
built by `_start_epoch` and torn down by `_stop_epoch`, so reconfiguration can replace
the epoch's components whole, and so can a catch-up: a validator that fell further
behind than its peers keep consensus data stops its consensus, follows the chain by
state sync and resumes consensus where that left it (`soma.node.catch_up`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.service import ValidatorService
from soma.authority.state import AuthorityState, read_system_state
from soma.authority.store import AuthorityStore
from soma.consensus.authority import AuthorityConfig, ConsensusAuthority
from soma.consensus.history import ConsensusHistoryError
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.node.catch_up import CHECK_INTERVAL_S, CatchUpError, follow_until_close, measure_lag
from soma.node.fullnode import FullNode
from soma.node.stores import committee_of_epoch, open_authority_store, open_epoch_store
from soma.p2p.service import P2pService
from soma.sync.server import SyncServer
from soma.types.config import ConfigError, NodeConfig, NodeRole
from soma.types.consensus.commit_ref import CommitRef
from soma.types.error import SomaError
from soma.types.tls import tls_identity

logger = logging.getLogger(__name__)

#: Tries at fetching the consensus history to resume from, after a catch-up.
RESUME_ATTEMPTS = 5


def consensus_parameters(config: NodeConfig) -> ConsensusParameters:
    """The config's overrides of the consensus parameters, each checked."""
    known = {f.name: f for f in dataclasses.fields(ConsensusParameters)}
    values: dict[str, Any] = {}
    for name, value in config.consensus_parameters.items():
        field = f"consensus.{name}"
        if name not in known:
            raise ConfigError(config.path, field, "unknown consensus parameter")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(config.path, field, f"expected an integer, got {value!r}")
        values[name] = value
    try:
        return ConsensusParameters(**values)
    except SomaError as e:
        raise ConfigError(config.path, "consensus", e.message) from None


@dataclasses.dataclass
class EpochComponents:
    epoch_store: AuthorityPerEpochStore
    state: AuthorityState
    consensus_store: ConsensusStore
    consensus: ConsensusAuthority


class SomaNode:
    def __init__(self, config: NodeConfig, on_fatal: Callable[[BaseException], None] | None = None):
        if config.role is not NodeRole.VALIDATOR:
            raise ConfigError(config.path, "role", "only validator nodes run here so far")
        self.config = config
        self._on_fatal = on_fatal
        self.parameters = consensus_parameters(config)
        self.store: AuthorityStore | None = None
        self.epoch: EpochComponents | None = None
        self.service: ValidatorService | None = None
        self.service_port = 0
        self.p2p: P2pService | None = None
        self._watch: asyncio.Task[None] | None = None
        #: True while the node catches up by state sync (it has no consensus then).
        self.catching_up = False

    @property
    def ready_port(self) -> int:
        """The port `soma start` is told once the node serves (its validator service)."""
        return self.service_port

    @property
    def state(self) -> AuthorityState:
        if self.epoch is None:
            if self.catching_up:
                raise CatchUpError("the validator is catching up by state sync; try another")
            raise SomaError("the node is not running")
        return self.epoch.state

    async def start(self) -> None:
        config = self.config
        self.store = open_authority_store(config)
        await self._start_epoch()
        self.service = ValidatorService(lambda: self.state, tls_identity(config.keys.network))
        self.service_port = self.service.bind(config.network_address)
        await self.service.start()
        await self._start_p2p()
        self._watch = asyncio.get_running_loop().create_task(self._watch_lag(), name="lag")
        logger.info(
            "validator %s serving on %s, P2P on %s, epoch %d",
            self.state.name,
            config.network_address,
            self.p2p.address if self.p2p is not None else None,
            self.state.epoch,
        )

    async def _start_p2p(self) -> None:
        config = self.config
        committee = self.state.epoch_store.committee
        address = config.p2p_address
        if address is None:
            # Where the committee says this validator listens.
            address = committee.members[committee.index_of(self.state.key.name)].p2p_address
        self.p2p = P2pService(
            config.keys.network,
            address,
            committee=self.state.epoch_store.committee,
            seeds=config.seed_peers,
        )
        # Serve the certified chain to followers (fullnodes, validators catching up).
        SyncServer(lambda: None if self.epoch is None else self.epoch.state).register(
            self.p2p.server
        )
        await self.p2p.start()

    # --- catching up ---------------------------------------------------------------------------

    def _catch_up_after(self) -> int:
        """Commits behind the certified chain beyond which consensus is given up for state
        sync: half of what peers retain, so the history to resume from is still there."""
        return self.parameters.retained_commits // 2

    async def _watch_lag(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            if self.epoch is None or self.p2p is None:
                continue
            try:
                height, lag = await measure_lag(self.epoch.state, self.p2p)
                if lag > self._catch_up_after():
                    await self._catch_up(height, lag)
            except asyncio.CancelledError:
                raise
            except BaseException as e:
                self._fatal(e)
                return

    async def _catch_up(self, height: int, lag: int) -> None:
        assert self.store is not None and self.p2p is not None
        logger.warning(
            "%d commits behind the certified chain (commit %d); peers keep %d: catching up by"
            " state sync, then resuming consensus",
            lag,
            height,
            self.parameters.retained_commits,
        )
        self.catching_up = True
        try:
            await self._stop_epoch()
            epoch_store = open_epoch_store(self.config, self.store)
            authority_key = self.config.keys.authority
            assert authority_key is not None
            state = AuthorityState(authority_key, self.store, epoch_store)
            await state.start(None)

            try:
                # Resume with a small lag, which commit sync makes up.
                resume_at = await follow_until_close(
                    state,
                    self.p2p,
                    committee_of_epoch(epoch_store.committee),
                    close=min(50, self._catch_up_after()),
                )
            finally:
                await state.stop()
                epoch_store.close()
            logger.warning("caught up to commit %d; resuming consensus", resume_at.index)
            for attempt in range(RESUME_ATTEMPTS):
                try:
                    await self._start_epoch(resume_at)
                    break
                except ConsensusHistoryError as e:
                    if attempt == RESUME_ATTEMPTS - 1:
                        raise
                    logger.warning("cannot resume consensus yet: %s", e)
                    await asyncio.sleep(CHECK_INTERVAL_S)
        finally:
            self.catching_up = False

    async def _start_epoch(self, resume_at: CommitRef | None = None) -> None:
        assert self.store is not None
        config = self.config
        committee = read_system_state(self.store).committee()
        epoch = committee.epoch
        authority_key = config.keys.authority
        assert authority_key is not None
        if not committee.is_member(authority_key.name):
            raise ConfigError(config.path, "keys.authority", f"not a member of epoch {epoch}")
        listed = committee.members[committee.index_of(authority_key.name)].network_key
        if listed != config.keys.network.public_key:
            # Said once, loudly: every peer refuses this node's links at the TLS handshake.
            logger.error(
                "keys.network of %s is %s, but the committee of epoch %d lists %s for this "
                "validator: its peers will refuse every link it opens (TLS)",
                config.path,
                config.keys.network.public_key.hex()[:16],
                epoch,
                listed.hex()[:16],
            )
        epoch_store = open_epoch_store(config, self.store)
        consensus_store = ConsensusStore.open_rocksdb(Path(config.db_path) / f"consensus-{epoch}")
        state = AuthorityState(authority_key, self.store, epoch_store)
        consensus = ConsensusAuthority(
            AuthorityConfig(
                committee=committee,
                own_index=committee.index_of(authority_key.name),
                protocol_key=config.keys.protocol,
                network_key=config.keys.network,
                parameters=self.parameters,
                listen_address=config.consensus_address,
                peer_addresses={
                    i: config.peer_addresses[m.hostname]
                    for i, m in enumerate(committee.members)
                    if m.hostname in config.peer_addresses
                },
            ),
            consensus_store,
            state.handle_commit,
            last_processed_commit=state.last_consensus_commit(),
            on_fatal=self._fatal,
            block_listener=state.preparer.add_blocks,
            processed_commit=state.last_consensus_commit,
        )
        await state.start(consensus.transaction_client)
        try:
            await consensus.start(resume_at)
        except BaseException:
            await consensus.stop()
            await state.stop()
            consensus_store.close()
            epoch_store.close()
            raise
        self.epoch = EpochComponents(epoch_store, state, consensus_store, consensus)

    async def _stop_epoch(self) -> None:
        parts = self.epoch
        if parts is None:
            return
        self.epoch = None
        await parts.consensus.stop()
        await parts.state.stop()
        parts.consensus_store.close()
        parts.epoch_store.close()

    def _fatal(self, error: BaseException) -> None:
        logger.critical("fatal: %s", error)
        if self._on_fatal is not None:
            self._on_fatal(error)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.wait([self._watch])
            self._watch = None
        if self.p2p is not None:
            await self.p2p.stop()
            self.p2p = None
        if self.service is not None:
            await self.service.stop()
            self.service = None
        await self._stop_epoch()
        if self.store is not None:
            self.store.close()
            self.store = None


async def run_node(
    config: NodeConfig, ready: Callable[[SomaNode | FullNode], None] | None = None
) -> int:
    """Run a validator or a fullnode (by the config's role) until SIGINT/SIGTERM (0) or a
    fatal error (1)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    status = 0

    def fatal(_: BaseException) -> None:
        nonlocal status
        status = 1
        done.set()

    node: SomaNode | FullNode = (
        SomaNode(config, on_fatal=fatal) if config.role is NodeRole.VALIDATOR else FullNode(config)
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await node.start()
        if ready is not None:
            ready(node)
        await done.wait()
    finally:
        await node.stop()
    return status
