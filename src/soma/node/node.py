"""SomaNode: one validator process, assembled from its config.

Perpetual parts live as long as the process: the authority store, the validator
service and the P2P service (discovery). Everything that belongs to one epoch (the
epoch store, the AuthorityState over it, and either the consensus store and
ConsensusAuthority or, when the node follows the chain without consensus, a state
sync) is built by `_start_epoch` and torn down by `_stop_epoch`, so reconfiguration
replaces the epoch's components whole:

- `_follow_epochs`: once the epoch's last commit is executed and its summary (naming
  the next committee) certified, the node records the next epoch's start, and starts
  it: with consensus if it is a member of the next committee, following by state sync
  otherwise (a validator that left goes on as a fullnode; one that joined starts
  consensus at the boundary it reached by state sync).
- a catch-up: a validator that fell further behind than its peers keep consensus data
  stops its consensus, follows the chain by state sync (across epochs if need be) and
  resumes consensus where that left it (`soma.node.catch_up`).

Both go through one lock, so an epoch change and a catch-up never interleave.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Callable
from typing import Any

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.service import ValidatorService
from soma.authority.state import AuthorityState
from soma.authority.store import AuthorityStore
from soma.consensus.authority import AuthorityConfig, ConsensusAuthority
from soma.consensus.core import Core
from soma.consensus.history import ConsensusHistoryError
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.metrics.registration import FULLNODE as FULLNODE_METRICS
from soma.metrics.registration import VALIDATOR as VALIDATOR_METRICS
from soma.metrics.registration import register
from soma.metrics.server import MetricsServer
from soma.node.catch_up import (
    CHECK_INTERVAL_S,
    CatchUpError,
    follow_until_executed,
    measure_lag,
)
from soma.node.fullnode import FullNode
from soma.node.stores import (
    committees_of,
    consensus_store_path,
    enter_next_epoch,
    open_authority_store,
    open_epoch_store,
)
from soma.p2p.service import P2pService
from soma.sync.server import SyncServer
from soma.sync.state_sync import StateSync
from soma.types.committee import Committee
from soma.types.config import ConfigError, NodeConfig, NodeRole
from soma.types.consensus.commit_ref import CommitRef
from soma.types.error import SomaError
from soma.types.tls import tls_identity

logger = logging.getLogger(__name__)

#: Tries at fetching the consensus history to resume from, after a catch-up.
RESUME_ATTEMPTS = 5
#: Commits behind the certified chain beyond which a validator whose execution did not
#: move for a whole check gives up consensus for state sync.
STALLED_LAG = 10
#: How long a validator waits in consensus for the certificate of its epoch's last
#: commit before it fetches it by state sync.
ENDED_PATIENCE_S = 10.0


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
    #: With consensus (a member, not catching up) ...
    consensus_store: ConsensusStore | None = None
    consensus: ConsensusAuthority | None = None
    #: ... or following the chain by state sync.
    sync: StateSync | None = None


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
        self._epochs: asyncio.Task[None] | None = None
        #: Held while the epoch's components are replaced.
        self._switching = asyncio.Lock()
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

    def _consensus_core(self) -> Core | None:
        """The Core of the consensus running now (for the service's reads of it)."""
        parts = self.epoch
        if parts is None or parts.consensus is None:
            return None
        return parts.consensus.protocol.core

    @property
    def in_consensus(self) -> bool:
        return self.epoch is not None and self.epoch.consensus is not None

    async def start(self) -> None:
        config = self.config
        self.store = open_authority_store(config)
        # P2P first: a node that follows the chain (not a member of the epoch's
        # committee) needs its peers to sync from.
        await self._start_p2p()
        await self._start_epoch()
        self.service = ValidatorService(
            lambda: self.state, tls_identity(config.keys.network), self._consensus_core
        )
        self.service_port = self.service.bind(config.network_address)
        await self.service.start()
        loop = asyncio.get_running_loop()
        self._watch = loop.create_task(self._watch_lag(), name="lag")
        self._epochs = loop.create_task(self._follow_epochs(), name="epochs")
        name = self.state.name
        members = self.state.epoch_store.committee.members
        logger.info(
            "validator %s (%s) serving on %s, P2P on %s, epoch %d",
            next((m.hostname for m in members if m.name == name), "outside the committee"),
            name,
            config.network_address,
            self.p2p.address if self.p2p is not None else None,
            self.state.epoch,
        )

    async def _start_p2p(self) -> None:
        config = self.config
        assert self.store is not None
        start = self.store.current_epoch_start()
        assert start is not None
        committee = start.committee()
        address = config.p2p_address
        if address is None:
            # Where the committee says this validator listens.
            authority_key = config.keys.authority
            assert authority_key is not None
            if not committee.is_member(authority_key.name):
                raise ConfigError(
                    config.path,
                    "p2p_address",
                    f"needed: the validator is not in the committee of epoch {start.epoch}",
                )
            address = committee.members[committee.index_of(authority_key.name)].p2p_address
        self.p2p = P2pService(
            config.keys.network,
            address,
            committee=committee,
            seeds=config.seed_peers,
        )
        # Serve the certified chain to followers (fullnodes, validators catching up).
        SyncServer(lambda: None if self.epoch is None else self.epoch.state).register(
            self.p2p.server
        )
        await self.p2p.start()

    # --- epochs --------------------------------------------------------------------------------

    async def _follow_epochs(self) -> None:
        """Enter each next epoch once the current one is done."""
        try:
            while True:
                state = self.epoch.state if self.epoch is not None else None
                if state is None or not state.epoch_done():
                    # Looked at again after each progress: a catch-up may replace the
                    # state meanwhile.
                    if state is None:
                        await asyncio.sleep(0.1)
                    else:
                        await state.wait_for_progress(1.0)
                    if state is not None and state.failure is not None:
                        raise SomaError(f"execution stopped: {state.failure}")
                    continue
                async with self._switching:
                    if self.epoch is None or self.epoch.state is not state:
                        continue  # replaced meanwhile (a catch-up): look again
                    await self._enter_next_epoch(state)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._fatal(e)

    async def _enter_next_epoch(self, state: AuthorityState) -> None:
        assert self.store is not None
        start = state.next_epoch_start()
        await self._stop_epoch()
        enter_next_epoch(self.config, self.store, start)
        if self.p2p is not None:
            self.p2p.set_committee(start.committee())
        await self._start_epoch(entered_now=True)
        logger.info(
            "entered epoch %d at commit %d: %d validators, this one %s",
            start.epoch,
            start.commit_offset,
            start.committee().size,
            "in consensus" if self.in_consensus else "following by state sync",
        )

    # --- catching up ---------------------------------------------------------------------------

    def _catch_up_after(self) -> int:
        """Commits behind the certified chain beyond which consensus is given up for state
        sync: half of what peers retain, so the history to resume from is still there."""
        return self.parameters.retained_commits // 2

    async def _watch_lag(self) -> None:
        ended_since: float | None = None
        executed = -1
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            if not self.in_consensus or self.p2p is None:
                ended_since, executed = None, -1
                continue
            try:
                state = self.state
                height, lag = await measure_lag(state, self.p2p)
                # Behind and not moving: its epoch's consensus is over elsewhere (it
                # restarted after the others left the epoch) or cannot reach them.
                stalled = lag > STALLED_LAG and state.executed_commit == executed
                executed = state.executed_commit
                if lag > self._catch_up_after() or stalled:
                    logger.warning(
                        "%d commits behind the certified chain (commit %d)%s; peers keep %d",
                        lag,
                        height,
                        " and not moving" if stalled else "",
                        self.parameters.retained_commits,
                    )
                    await self._catch_up()
                    executed = -1
                elif (
                    state.last_commit is not None
                    and not state.epoch_done()
                    and height >= state.commit_offset + state.last_commit
                ):
                    # The epoch's last commit is known and certified (f+1 stake serve
                    # it), but not here: the others may have left the epoch's consensus
                    # already (this node restarted late): state sync brings the
                    # certificate. Never without that: if nobody has the certificate,
                    # it forms only in this epoch's consensus, which must go on.
                    ended_since = ended_since or loop.time()
                    if loop.time() - ended_since >= ENDED_PATIENCE_S:
                        logger.warning(
                            "epoch %d ended at commit %d, not certified here after %.0f s",
                            state.epoch,
                            state.commit_offset + state.last_commit,
                            ENDED_PATIENCE_S,
                        )
                        await self._catch_up()
                else:
                    ended_since = None
            except asyncio.CancelledError:
                raise
            except BaseException as e:
                self._fatal(e)
                return

    async def _catch_up(self) -> None:
        assert self.store is not None and self.p2p is not None
        logger.warning("catching up by state sync, then resuming consensus")
        self.catching_up = True
        try:
            async with self._switching:
                await self._stop_epoch()
                await self._start_epoch()  # following: catching_up is set
            # Resume with a small lag, which commit sync makes up (epoch changes on the
            # way are made by `_follow_epochs`, still following).
            close = min(50, self._catch_up_after())
            while True:
                if self.epoch is None:  # between two epochs
                    await asyncio.sleep(0.1)
                    continue
                state = self.epoch.state
                if state.failure is not None:
                    raise CatchUpError(f"execution stopped while catching up: {state.failure}")
                height, lag = await measure_lag(state, self.p2p)
                # height 0: too few members answered to say; never a reason to resume.
                if height > 0 and lag <= close and state.last_commit is None:
                    async with self._switching:
                        current = self.epoch is not None and self.epoch.state is state
                        if current and await self._resume_consensus(state):
                            return
                logger.info(
                    "catching up by state sync: executed commit %d of %d",
                    state.executed_commit,
                    height,
                )
                await state.wait_for_progress(CHECK_INTERVAL_S)
        finally:
            self.catching_up = False

    async def _resume_consensus(self, state: AuthorityState) -> bool:
        """From following to consensus at the last commit executed, if this validator
        is a member of the epoch (else it keeps following: False)."""
        if not self._is_member(state.epoch_store.committee):
            return False
        parts = self.epoch
        assert parts is not None and parts.sync is not None
        await parts.sync.stop()
        parts.sync = None
        resume_at = await follow_until_executed(state)
        await self._stop_epoch()
        logger.warning(
            "caught up to commit %d; resuming consensus",
            state.commit_offset + (0 if resume_at is None else resume_at.index),
        )
        self.catching_up = False
        for attempt in range(RESUME_ATTEMPTS):
            try:
                await self._start_epoch(resume_at)
                return True
            except ConsensusHistoryError as e:
                logger.warning("cannot resume consensus yet: %s", e)
                if attempt < RESUME_ATTEMPTS - 1:
                    await asyncio.sleep(CHECK_INTERVAL_S)
        # The peers do not serve that history (they left the epoch, or pruned it):
        # follow on by state sync and try again closer to them.
        self.catching_up = True
        await self._start_epoch()
        return False

    def _is_member(self, committee: Committee) -> bool:
        authority_key = self.config.keys.authority
        assert authority_key is not None
        return committee.is_member(authority_key.name)

    async def _start_epoch(
        self, resume_at: CommitRef | None = None, *, entered_now: bool = False
    ) -> None:
        """The components of the epoch the node last entered: with consensus if this
        validator is a member and not catching up, following by state sync otherwise.
        `entered_now`: this process just entered the epoch, so its consensus store is
        new and nothing of it was ever proposed: the amnesia guard has nothing to ask."""
        assert self.store is not None
        config = self.config
        authority_key = config.keys.authority
        assert authority_key is not None
        epoch_store = open_epoch_store(config, self.store)
        committee = epoch_store.committee
        epoch = committee.epoch
        state = AuthorityState(authority_key, self.store, epoch_store)
        if self.catching_up or not self._is_member(committee):
            try:
                await state.start(None)
                sync = self._follow(state)
            except BaseException:
                await state.stop()
                epoch_store.close()
                raise
            self.epoch = EpochComponents(epoch_store, state, sync=sync)
            if not self._is_member(committee):
                logger.info(
                    "not in the committee of epoch %d: following the chain by state sync",
                    epoch,
                )
            return
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
        consensus_store = ConsensusStore.open_rocksdb(consensus_store_path(config, epoch))
        consensus = ConsensusAuthority(
            AuthorityConfig(
                committee=committee,
                own_index=committee.index_of(authority_key.name),
                protocol_key=config.keys.protocol,
                network_key=config.keys.network,
                parameters=self.parameters,
                amnesia_guard=not entered_now,
                listen_address=self._consensus_address(committee),
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

    def _consensus_address(self, committee: Committee) -> str:
        """Where this validator's consensus listens: the config's, else the committee's."""
        if self.config.consensus_address is not None:
            return self.config.consensus_address
        authority_key = self.config.keys.authority
        assert authority_key is not None
        return committee.members[committee.index_of(authority_key.name)].consensus_address

    def _follow(self, state: AuthorityState) -> StateSync:
        assert self.store is not None and self.p2p is not None
        p2p = self.p2p
        sync = StateSync(
            lambda: state,
            p2p.client,
            p2p.peers,
            committees_of(self.store),
            on_misbehaviour=lambda peer, _reason: p2p.report_misbehaviour(peer),
        )
        sync.start()
        return sync

    async def _stop_epoch(self) -> None:
        parts = self.epoch
        if parts is None:
            return
        self.epoch = None
        if parts.sync is not None:
            await parts.sync.stop()
        if parts.consensus is not None:
            await parts.consensus.stop()
        await parts.state.stop()
        if parts.consensus_store is not None:
            parts.consensus_store.close()
        parts.epoch_store.close()

    def _fatal(self, error: BaseException) -> None:
        logger.critical("fatal: %s", error)
        if self._on_fatal is not None:
            self._on_fatal(error)

    async def stop(self) -> None:
        for task in (self._watch, self._epochs):
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        self._watch = self._epochs = None
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
    metrics = None if config.metrics_address is None else MetricsServer(config.metrics_address)
    try:
        if metrics is not None:
            register(VALIDATOR_METRICS if config.role is NodeRole.VALIDATOR else FULLNODE_METRICS)
            metrics.start()
            logger.info("metrics on http://%s/metrics", config.metrics_address)
        await node.start()
        if ready is not None:
            ready(node)
        await done.wait()
    finally:
        await node.stop()
        if metrics is not None:
            metrics.stop()
    return status
