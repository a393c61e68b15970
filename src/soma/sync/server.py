"""Serving the chain to peers: what a node holds of the certified chain, on its P2P port.

Every node serves (validators and fullnodes alike), so what one node synced is served
onwards. A node advertises only commits it can serve whole: up to the highest index for
which it holds both the certified summary and the contents (its own executed commits,
whose transactions it stores).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from soma.authority.state import AuthorityState
from soma.p2p.server import P2pServer
from soma.sync import wire
from soma.types.bcs import BcsStruct
from soma.types.commit_summary import CommitContents
from soma.types.error import SomaError


class ChainUnavailableError(SomaError):
    code = "CHAIN_UNAVAILABLE"


#: How often a long poll looks whether the node replaced its state (an epoch change).
STATE_CHECK_S = 0.25
#: How long a request waits for the node to finish entering the next epoch.
SWITCH_WAIT_S = 2.0


class SyncServer:
    def __init__(self, state: Callable[[], AuthorityState | None]) -> None:
        """`state` gives the node's current AuthorityState (replaced at an epoch change;
        None while the node is between epochs)."""
        self._state = state

    def register(self, server: P2pServer) -> None:
        server.add_unary(
            wire.GET_CHAIN_INFO,
            wire.GetChainInfoRequest,
            self.chain_info,
            max_request_bytes=wire.MAX_REQUEST_BYTES,
        )
        server.add_unary(
            wire.GET_SUMMARIES,
            wire.GetSummariesRequest,
            self.summaries,
            max_request_bytes=wire.MAX_REQUEST_BYTES,
        )
        server.add_unary(
            wire.GET_CONTENTS,
            wire.GetContentsRequest,
            self.contents,
            max_request_bytes=wire.MAX_REQUEST_BYTES,
        )

    async def _current(self) -> AuthorityState:
        """The node's state; while it is between two epochs (a moment), the next one:
        a refusal then would make every follower drop every validator at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SWITCH_WAIT_S
        while True:
            state = self._state()
            if state is not None:
                return state
            if loop.time() >= deadline:
                raise ChainUnavailableError("the node is between epochs; ask again shortly")
            await asyncio.sleep(0.02)

    async def chain_info(self, request: wire.GetChainInfoRequest, caller: str) -> BcsStruct:
        state = await self._current()
        genesis = state.store.summaries.summary(0)
        if genesis is None:
            raise ChainUnavailableError("the node has no genesis summary")
        wait_s = min(request.wait_ms, wire.MAX_WAIT_MS) / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while highest_available(state) <= request.after:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            # In short steps: at an epoch change the node replaces its state, and the
            # old one makes no more progress.
            await state.wait_for_progress(min(remaining, STATE_CHECK_S))
            replaced = self._state()
            if replaced is not None:
                state = replaced
        return wire.ChainInfo(genesis.digest(), highest_available(state))

    async def summaries(self, request: wire.GetSummariesRequest, caller: str) -> BcsStruct:
        state = await self._current()
        last = highest_available(state)
        count = min(request.count, wire.MAX_SUMMARIES, max(0, last - request.start + 1))
        found = state.store.summaries.certified_range(request.start, count)
        return wire.GetSummariesResponse(tuple(found))

    async def contents(self, request: wire.GetContentsRequest, caller: str) -> BcsStruct:
        state = await self._current()
        last = highest_available(state)
        out: list[CommitContents] = []
        size = 0
        for index in request.indices[: wire.MAX_CONTENTS_INDICES]:
            if index > last or size >= wire.CONTENTS_SOFT_BYTES:
                break
            held = commit_contents(state, index)
            if held is None:
                break
            out.append(held)
            size += sum(len(tx.to_bytes()) for tx in held.transactions)
        return wire.GetContentsResponse(tuple(out))


def highest_available(state: AuthorityState) -> int:
    """The highest commit whose certified summary and contents this node holds (every
    one below too): certified, and executed here."""
    return min(state.highest_certified_commit, state.executed_commit)


def commit_contents(state: AuthorityState, index: int) -> CommitContents | None:
    """Commit `index`'s transactions in execution order, if this node executed it."""
    digests = state.store.summaries.contents_digests(index)
    if digests is None:
        return None
    transactions = []
    for digest in digests:
        tx = state.get_transaction(digest)
        if tx is None:
            return None
        transactions.append(tx)
    return CommitContents(index, tuple(transactions))
