"""LocalReader: the chain as a fullnode serves it, read from its own executed state.

Reads never leave the node: they are the AuthorityState's, the same calls the validator
service answers with. Execution still needs the validators (a fullnode orders nothing):
the transaction goes through the QuorumDriver, and `execute` returns only once this
node has executed it too, so a read right after a write sees it (read-after-write on
one node, without the remote reader's per-address bookkeeping). A node that falls so
far behind that the transaction does not execute here within the timeout answers with
`LocalExecutionTimeoutError`: the transaction is certified, this node is late.

What only consensus knows (the recent DAG, a commit's leader and blocks) and the
validators' signatures over effects this node did not ask for are read from the
validators (`soma.orchestrator.validator_reads`): a fullnode stores, per commit, its own
summary, the certified summary and the transaction digests, but not the consensus
commit behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable

from soma.authority import service_wire as wire
from soma.authority.commit_records import commit_records
from soma.authority.indexes import Balance
from soma.authority.paging import Page
from soma.authority.service import genesis_supply_of, read_supply
from soma.authority.service_client import RemoteError
from soma.authority.state import AuthorityState, read_system_state
from soma.orchestrator.chain_reader import (
    CoinPage,
    NetworkSupply,
    NodeStatus,
    ObjectPage,
    Peer,
)
from soma.orchestrator.quorum_driver import QuorumDriver
from soma.orchestrator.validator_reads import EffectsSignatures, RecentDag, ValidatorReads
from soma.types.base import ObjectID, SomaAddress
from soma.types.commit_summary import CertifiedCommitSummary
from soma.types.committee import Committee
from soma.types.digests import TransactionDigest
from soma.types.effects import CertifiedTransactionEffects, TransactionEffects
from soma.types.error import SomaError
from soma.types.object import Object
from soma.types.transaction import ImmOrOwnedInput, SignedTransaction

#: How long `execute` waits, after the certificate, for this node to execute the
#: transaction (state sync brings it once its commit's summary is certified).
LOCAL_EXECUTION_TIMEOUT_S = 30.0
#: How often a wait on this node's state looks whether the node replaced it (an epoch
#: change).
STATE_CHECK_S = 0.25
#: The refusal of an owned input named at a version that is no longer live: from a
#: client that read this node while it was behind, it is answered once caught up.
STALE_INPUT_CODE = "OBJECT_VERSION_UNAVAILABLE"


class LocalExecutionTimeoutError(SomaError):
    """The transaction is certified (it executed on the network) but this node has not
    executed it in time: it is behind the chain. A read here does not show it yet."""

    code = "LOCAL_EXECUTION_TIMEOUT"


class LocalReader:
    """A ChainReader over this node's AuthorityState, executing through `driver`.

    `state` returns the current epoch's AuthorityState (the node replaces it whole at
    reconfiguration, as the validator service sees it). `highest_known_certified`, if
    given, is the highest certified commit known from peers (state sync's): the status
    reports the higher of it and the state's own, so `sync_lag` shows how far behind
    the network this node is. The reader owns `driver` and closes it.
    """

    def __init__(
        self,
        state: Callable[[], AuthorityState],
        driver: QuorumDriver,
        highest_known_certified: Callable[[], int] | None = None,
        local_timeout_s: float = LOCAL_EXECUTION_TIMEOUT_S,
        peers: Callable[[], list[Peer]] | None = None,
    ) -> None:
        self._state = state
        self._peers = peers
        self.driver = driver
        self._highest_known_certified = highest_known_certified
        self.local_timeout_s = local_timeout_s
        self._genesis_supply: int | None = None
        self._validator_reads = ValidatorReads(driver)

    async def close(self) -> None:
        await self.driver.close()

    def peers(self) -> list[Peer]:
        return [] if self._peers is None else self._peers()

    @property
    def committee(self) -> Committee:
        return self._state().epoch_store.committee

    def committee_of(self, epoch: int) -> Committee | None:
        """From the epoch starts this node recorded (every epoch it entered)."""
        start = self._state().store.epoch_start(epoch)
        return None if start is None else start.committee()

    async def get_object(self, object_id: ObjectID) -> Object | None:
        return self._state().get_object(object_id)

    async def owned_objects(
        self, owner: SomaAddress, cursor: ObjectID | None, limit: int
    ) -> ObjectPage:
        return self._state().owned_objects_page(owner, cursor, wire.page_limit(limit))

    async def coins(
        self, owner: SomaAddress, cursor: wire.CoinCursor | None, limit: int
    ) -> CoinPage:
        start = None if cursor is None else (cursor.balance, cursor.object_id)
        page = self._state().coins_page(owner, start, wire.page_limit(limit))
        after = page.next_cursor
        return Page(
            [wire.CoinEntry(ref, balance) for ref, balance in page.items],
            None if after is None else wire.CoinCursor(*after),
        )

    async def balance(self, owner: SomaAddress) -> Balance:
        return self._state().balance(owner)

    async def transaction(
        self, digest: TransactionDigest
    ) -> tuple[SignedTransaction, TransactionEffects | None] | None:
        state = self._state()
        tx = state.get_transaction(digest)
        return None if tx is None else (tx, state.get_effects(digest))

    async def status(self) -> NodeStatus:
        state = self._state()
        verified = state.verified_summary()
        highest = state.highest_certified_commit
        if self._highest_known_certified is not None:
            highest = max(highest, self._highest_known_certified())
        fork = state.fork
        return NodeStatus(
            epoch=state.epoch,
            ordered_commit=state.commit_offset + state.last_consensus_commit(),
            latest_commit=state.executed_commit,
            latest_certified_commit=verified.index,
            state_root=verified.state_root,
            highest_certified_commit=highest,
            fork=None if fork is None else wire.ForkReport(fork.index, fork.own, fork.certified),
            system_state=read_system_state(state.store),
        )

    async def supply(self) -> NetworkSupply:
        """The supply of this node's state; what genesis created is read from its store
        once (it never changes)."""
        state = self._state()
        if self._genesis_supply is None:
            self._genesis_supply = genesis_supply_of(state)
        return NetworkSupply.from_wire(read_supply(state, self._genesis_supply))

    async def certified_summary(self, index: int | None) -> CertifiedCommitSummary | None:
        summaries = self._state().store.summaries
        return summaries.last_certified() if index is None else summaries.certified_summary(index)

    async def commits(self, start: int, count: int, detail: bool) -> list[wire.CommitRecord]:
        """From this node's store. With `detail`, the consensus commits (leader and
        blocks) come from a validator that still holds them, each checked against the
        consensus commit digest of this node's summary; where no validator answers
        with it, the record has none."""
        state = self._state()
        records = commit_records(state, start, count, detail)
        if not detail or not records:
            return records
        try:
            theirs = await self._validator_reads.commit_records(start, len(records), True)
        except SomaError:
            return records
        held = {r.index: r.commit for r in theirs if r.commit is not None}
        summaries = state.store.summaries
        out = []
        for record in records:
            commit = held.get(record.index)
            summary = summaries.summary(record.index)
            named = None if summary is None else summary.commit_digest
            if commit is not None and commit.digest() == named:
                record = dataclasses.replace(record, commit=commit)
            out.append(record)
        return out

    async def recent_dag(self, rounds: int) -> RecentDag:
        return await self._validator_reads.recent_dag(rounds)

    async def effects_signatures(
        self, digest: TransactionDigest, effects: TransactionEffects
    ) -> EffectsSignatures:
        return await self._validator_reads.effects_signatures(digest, effects)

    async def execute(self, tx: SignedTransaction) -> CertifiedTransactionEffects:
        """Certified by the validators, then executed here: a read after this returns
        sees the transaction. `LocalExecutionTimeoutError` if this node does not execute
        it within `local_timeout_s` of the certificate."""
        try:
            certificate = await self.driver.execute(tx)
        except RemoteError as e:
            if e.remote_code != STALE_INPUT_CODE or not await self._catch_up_on_inputs(tx):
                raise
            raise RemoteError(
                e.remote_code,
                f"{e.message} (this node was behind the network and has caught up on these "
                "objects: read them again)",
            ) from None
        digest = certificate.data.transaction_digest
        try:
            async with asyncio.timeout(self.local_timeout_s):
                await self._wait_executed(digest)
        except TimeoutError:
            raise LocalExecutionTimeoutError(
                f"transaction {digest} is certified, but this node has not executed it in "
                f"{self.local_timeout_s:g} s: it is behind the network (reads here will show "
                "it once the node catches up)"
            ) from None
        return certificate

    async def _catch_up_on_inputs(self, tx: SignedTransaction) -> bool:
        """After the validators refused `tx` for an owned input at an old version: if
        this node still holds every owned input at the version `tx` names, it is behind
        (the client read them here, the network has moved on), and it waits, up to
        `local_timeout_s`, until one of them moves here too, so that the client's next
        read here is fresh. Whether the node was behind and caught up."""
        named = {
            entry.object_ref.object_id: entry.object_ref.version
            for entry in tx.data.input_objects()
            if isinstance(entry, ImmOrOwnedInput)
        }

        def stale() -> bool:
            state = self._state()
            for object_id, version in named.items():
                live = state.get_object(object_id)
                if live is None or live.version != version:
                    return False
            return True

        if not named or not stale():
            return False
        try:
            async with asyncio.timeout(self.local_timeout_s):
                while stale():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(STATE_CHECK_S):
                            await self._state().wait_for_flush()
        except TimeoutError:
            return False
        return True

    async def _wait_executed(self, digest: TransactionDigest) -> None:
        """Until this node executed `digest`, looking at its current state in short
        steps: at an epoch change the node replaces its state, and a transaction
        submitted again in the next epoch executes in the new one."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATE_CHECK_S):
                    await self._state().wait_for_effects(digest)
                    return
