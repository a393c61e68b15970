"""State sync in one process: validators of a TestNetwork serve the chain on P2P
servers; a follower (an AuthorityState with no consensus and no key, as on a fullnode)
syncs from them; a forging server can sit among the peers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.state import AuthorityState, initialize_genesis, read_system_state
from soma.authority.store import AuthorityStore
from soma.p2p.client import P2pClient
from soma.p2p.peer_table import KnownPeer
from soma.p2p.server import P2pServer
from soma.sync.server import SyncServer
from soma.sync.state_sync import StateSync, SyncParameters
from soma.types.bcs import BcsStruct
from soma.types.committee import Committee
from soma.types.crypto import NetworkKeyPair
from soma.types.tls import tls_identity
from soma.types.transaction import SignedTransaction, TransferCoin
from tests.authority.network import TIMEOUT_S, TestNetwork

FAST = SyncParameters(poll_interval_s=0.05, request_timeout_s=5.0, unreachable_ban_s=0.2)


def transfer(net: TestNetwork, sender: int, recipient: int, amount: int) -> SignedTransaction:
    gas = net.coin_ref(net.genesis_coin_ids[sender])
    return net.sign(sender, TransferCoin(gas, amount, net.addresses[recipient]), gas)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition` (a liveness bound, not a timing assertion)."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class ServedChain:
    """A P2P server in front of something that answers state-sync requests."""

    def __init__(self, sync_server: SyncServer | None = None) -> None:
        self.server = P2pServer(rate_limit=None)
        if sync_server is not None:
            sync_server.register(self.server)
        self.key = NetworkKeyPair.generate()
        self.port = 0

    async def start(self) -> str:
        self.port = await self.server.start("127.0.0.1:0", tls_identity(self.key))
        return self.address

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def peer(self) -> KnownPeer:
        return KnownPeer(self.key.public_key, (self.address,), None, False)

    async def stop(self) -> None:
        await self.server.stop()


class Follower:
    """A node that only follows: its own stores, no consensus, state sync."""

    def __init__(self, net: TestNetwork, path: Path | None, peers: list[KnownPeer]) -> None:
        self.net = net
        self.path = path
        self.peers = peers
        self.store = self._open_store()
        initialize_genesis(self.store, net.genesis)
        self.state: AuthorityState | None = None
        self.sync: StateSync | None = None
        self.client = P2pClient()
        self.epoch_store: AuthorityPerEpochStore | None = None

    def _open_store(self) -> AuthorityStore:
        if self.path is None:
            return AuthorityStore.open_memory()
        return AuthorityStore.open_rocksdb(os.path.join(self.path, "authority"))

    def committee_of(self, epoch: int) -> Committee:
        return self.net.committee

    async def start(self, parameters: SyncParameters = FAST) -> None:
        system_state = read_system_state(self.store)
        committee = system_state.committee()
        if self.path is None:
            if self.epoch_store is None:
                self.epoch_store = AuthorityPerEpochStore.open_memory(committee, system_state)
        else:
            self.epoch_store = AuthorityPerEpochStore.open_rocksdb(
                os.path.join(self.path, "epoch-0"), committee, system_state
            )
        self.state = AuthorityState(None, self.store, self.epoch_store)
        await self.state.start(None)
        self.sync = StateSync(
            lambda: self._state(), self.client, lambda: self.peers, self.committee_of, parameters
        )
        self.sync.start()

    def _state(self) -> AuthorityState:
        assert self.state is not None
        return self.state

    async def stop(self) -> None:
        if self.sync is not None:
            await self.sync.stop()
        if self.state is not None:
            await self.state.stop()
        if self.path is not None and self.epoch_store is not None:
            self.epoch_store.close()
        self.state = None

    def close(self) -> None:
        self.store.close()


class ForgingSyncServer(SyncServer):
    """Serves the honest chain of `state`, with one kind of forgery applied."""

    def __init__(
        self,
        state: Callable[[], AuthorityState | None],
        forge: Callable[[str, BcsStruct], Awaitable[BcsStruct] | BcsStruct],
    ) -> None:
        super().__init__(state)
        self._forge = forge

    async def summaries(self, request: BcsStruct, caller: str) -> BcsStruct:  # type: ignore[override]
        honest = await super().summaries(request, caller)  # type: ignore[arg-type]
        return await _maybe_await(self._forge("summaries", honest))

    async def contents(self, request: BcsStruct, caller: str) -> BcsStruct:  # type: ignore[override]
        honest = await super().contents(request, caller)  # type: ignore[arg-type]
        return await _maybe_await(self._forge("contents", honest))


async def _maybe_await(value: Awaitable[BcsStruct] | BcsStruct) -> BcsStruct:
    if isinstance(value, BcsStruct):
        return value
    return await value
