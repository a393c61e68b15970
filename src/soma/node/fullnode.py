"""FullNode: a node that follows the chain without taking part in consensus.

It holds the same stores as a validator (the perpetual store, one epoch store per
epoch) and executes every commit, but learns commits only from certified summaries:
state sync fetches them from its peers (validators and other fullnodes, found by
discovery), checks them, and hands them to its AuthorityState, which checks its own
execution against each summary. It serves what it holds onwards on its P2P port, and
the public HTTP API from its own state (reads) and through the validators (writes:
submitted by the quorum driver, answered once executed here too).

Epochs: once the last commit of its epoch is executed and its summary certified, the
node enters the next epoch (`_follow_epochs`): it records the epoch's start (the
system state the epoch change left, from certified data alone), replaces its epoch
store and AuthorityState, and tells discovery the new committee. State sync goes on
through the switch: its verifier learnt the next committee from the certified summary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.state import AuthorityState
from soma.authority.store import AuthorityStore
from soma.node.stores import (
    committees_of,
    enter_next_epoch,
    open_authority_store,
    open_epoch_store,
)
from soma.orchestrator.chain_reader import Peer
from soma.orchestrator.faucet import Faucet
from soma.orchestrator.local_reader import LocalReader
from soma.orchestrator.quorum_driver import QuorumDriver
from soma.p2p.service import P2pService
from soma.rpc.app import create_app
from soma.rpc.limits import ApiLimits
from soma.rpc.server import RunningApi
from soma.sync.server import SyncServer
from soma.sync.state_sync import StateSync
from soma.types.base import AuthorityName
from soma.types.committee import Committee
from soma.types.config import ConfigError, NodeConfig, NodeRole
from soma.types.crypto import Ed25519PublicKey
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

#: Where a fullnode listens for P2P when its config does not say (a free port).
DEFAULT_P2P_ADDRESS = "127.0.0.1:0"


class FullNode:
    def __init__(self, config: NodeConfig) -> None:
        if config.role is not NodeRole.FULLNODE:
            raise ConfigError(config.path, "role", "a fullnode config is needed here")
        self.config = config
        self.store: AuthorityStore | None = None
        self.epoch_store: AuthorityPerEpochStore | None = None
        self.state: AuthorityState | None = None
        self.p2p: P2pService | None = None
        self.sync: StateSync | None = None
        #: Extra parts started after sync and stopped before it (the HTTP API).
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        #: Where the HTTP API serves, once started (None without one).
        self.api_address: str | None = None
        self._epochs: asyncio.Task[None] | None = None
        #: Called with each epoch's committee as the node enters it (the API's driver).
        self.on_new_committee: list[Callable[[Committee], None]] = []

    @property
    def committee(self) -> Committee:
        if self.epoch_store is None:
            raise SomaError("the fullnode is not running")
        return self.epoch_store.committee

    def _current_state(self) -> AuthorityState:
        if self.state is None:
            raise SomaError("the fullnode is not running")
        return self.state

    async def start(self) -> None:
        config = self.config
        self.store = open_authority_store(config)
        self.epoch_store = open_epoch_store(config, self.store)
        committee = self.epoch_store.committee
        self.state = AuthorityState(None, self.store, self.epoch_store)
        await self.state.start(None)
        self.p2p = P2pService(
            config.keys.network,
            config.p2p_address or DEFAULT_P2P_ADDRESS,
            committee=committee,
            seeds=config.seed_peers,
        )
        SyncServer(lambda: self.state).register(self.p2p.server)
        await self.p2p.start()
        self.sync = StateSync(
            self._current_state,
            self.p2p.client,
            self.p2p.peers,
            committees_of(self.store),
            on_misbehaviour=self._misbehaved,
        )
        self.sync.start()
        self._epochs = asyncio.get_running_loop().create_task(self._follow_epochs(), name="epochs")
        if config.api_address is not None:
            await self._start_api(config.api_address)
        logger.info(
            "fullnode following epoch %d from %d peers; P2P on %s",
            committee.epoch,
            len(self.p2p.peers()),
            self.p2p.address,
        )

    async def _start_api(self, address: str) -> None:
        """The public HTTP API: reads from this node's state, writes through the
        validators (answered once executed here too)."""
        reader = LocalReader(
            self._current_state,
            QuorumDriver.for_committee(self.committee, self._validator_routes(self.committee)),
            self.highest_known_certified,
            peers=self.peers,
        )
        self.on_new_committee.append(
            lambda committee: reader.driver.reconfigure(
                committee, self._validator_routes(committee)
            )
        )
        self.on_stop.append(reader.close)
        config = self.config
        faucet = None if config.faucet_key is None else Faucet(reader, config.faucet_key)
        limits = ApiLimits.from_config(config.api_limits, str(config.path))
        host, _, port = address.rpartition(":")
        api = RunningApi(create_app(reader, faucet, limits), host, int(port))
        await api.start()
        self.on_stop.append(api.stop)
        self.api_address = address

    async def _follow_epochs(self) -> None:
        while True:
            state = self._current_state()
            await state.wait_epoch_done()
            try:
                await self._enter_next_epoch(state)
            except BaseException as e:
                logger.critical("cannot enter epoch %d: %s", state.epoch + 1, e)
                raise

    async def _enter_next_epoch(self, state: AuthorityState) -> None:
        assert self.store is not None and self.epoch_store is not None
        start = state.next_epoch_start()
        await state.stop()
        self.epoch_store.close()
        enter_next_epoch(self.config, self.store, start)
        self.epoch_store = open_epoch_store(self.config, self.store)
        self.state = AuthorityState(None, self.store, self.epoch_store)
        await self.state.start(None)
        committee = self.epoch_store.committee
        if self.p2p is not None:
            self.p2p.set_committee(committee)
        for listener in self.on_new_committee:
            listener(committee)
        logger.info(
            "entered epoch %d at commit %d: %d validators",
            start.epoch,
            start.commit_offset,
            committee.size,
        )

    def _validator_routes(self, committee: Committee) -> dict[AuthorityName, str]:
        """Where the config says to reach validators (by hostname), where it differs
        from the committee's addresses."""
        routes = self.config.validator_addresses
        return {m.name: routes[m.hostname] for m in committee.members if m.hostname in routes}

    def _misbehaved(self, peer_id: Ed25519PublicKey, reason: str) -> None:
        """A peer sent data that failed verification: discovery forgets it too."""
        if self.p2p is not None:
            self.p2p.report_misbehaviour(peer_id)

    def peers(self) -> list[Peer]:
        """The P2P peers discovery knows (not dropped)."""
        if self.p2p is None:
            return []
        return [Peer(p.peer_id, p.addresses, p.committee) for p in self.p2p.peers()]

    @property
    def ready_port(self) -> int:
        """The port `soma start` is told once the node serves (its P2P port)."""
        return 0 if self.p2p is None else self.p2p.port

    def highest_known_certified(self) -> int:
        """The highest commit a peer said it can serve (for `sync_lag`)."""
        return 0 if self.sync is None else self.sync.highest_known

    async def stop(self) -> None:
        if self._epochs is not None:
            self._epochs.cancel()
            await asyncio.wait([self._epochs])
            self._epochs = None
        for stop in reversed(self.on_stop):
            await stop()
        self.on_stop = []
        if self.sync is not None:
            await self.sync.stop()
            self.sync = None
        if self.p2p is not None:
            await self.p2p.stop()
            self.p2p = None
        if self.state is not None:
            await self.state.stop()
            self.state = None
        if self.epoch_store is not None:
            self.epoch_store.close()
            self.epoch_store = None
        if self.store is not None:
            self.store.close()
            self.store = None
