"""RemoteReader: the chain read from the validators, for an API served outside them.

Execution goes through the QuorumDriver; reads go to the first validator that answers,
in a rotating order, so one slow or stopped validator does not stall reads. Reads are
read-your-writes (see `RemoteReader.read`), which is what the ChainReader promises.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from soma.authority import service_wire as wire
from soma.authority.indexes import Balance
from soma.authority.paging import Page
from soma.authority.service_client import ValidatorCallError, ValidatorClient
from soma.orchestrator.chain_reader import (
    CoinPage,
    NetworkSupply,
    NodeStatus,
    ObjectPage,
    Peer,
)
from soma.orchestrator.quorum_driver import QuorumDriver
from soma.orchestrator.validator_reads import (
    EffectsSignatures,
    NoValidatorError,
    RecentDag,
    ValidatorReads,
)
from soma.types.base import AuthorityName, ObjectID, SomaAddress
from soma.types.commit_summary import CertifiedCommitSummary
from soma.types.committee import Committee
from soma.types.digests import TransactionDigest
from soma.types.effects import CertifiedTransactionEffects, ObjectOutWrite, TransactionEffects
from soma.types.object import AddressOwner, Object
from soma.types.transaction import SignedTransaction

T = TypeVar("T")
#: How long a read waits for a validator to catch up with the reader's last write.
READ_CATCH_UP_S = 2.0
#: Addresses whose last write a reader remembers (the oldest forgotten first).
MAX_TRACKED_ADDRESSES = 100_000


class RemoteReader:
    """A ChainReader over the validators' services. `read` (any validator call, with
    read-your-writes) and `driver` stay public for the benchmarks' own calls."""

    def __init__(
        self,
        committee: Committee,
        transaction_fee: int,
        addresses: Mapping[AuthorityName, str] | None = None,
    ) -> None:
        self.committee = committee
        #: The fee of the epoch the reader connected in (for clients building gas budgets).
        self.transaction_fee = transaction_fee
        self.driver = QuorumDriver.for_committee(committee, addresses)
        self.clients = [self.driver.clients[n] for n in committee.names()]
        self._validator_reads = ValidatorReads(self.driver)
        self._next = itertools.cycle(range(len(self.clients)))
        self._last_write: TransactionDigest | None = None
        self._last_write_for: collections.OrderedDict[SomaAddress, TransactionDigest] = (
            collections.OrderedDict()
        )

    @classmethod
    async def connect(
        cls, known: Committee, overrides: Mapping[AuthorityName, str] | None = None
    ) -> RemoteReader:
        """Learn the current committee from the first member of `known` (a committee the
        caller trusts, such as genesis's) that answers; `overrides` says where to reach
        validators elsewhere than the committee lists."""
        last: Exception | None = None
        where = dict(overrides or {})
        for member in known.members:
            client = ValidatorClient.for_member(member, where.get(member.name))
            try:
                status = await client.get_status()
                state = status.system_state
                return cls(state.committee(), state.parameters.transaction_fee, where)
            except ValidatorCallError as e:
                last = e
            finally:
                await client.close()
        raise NoValidatorError(f"no validator answered: {last}")

    async def close(self) -> None:
        await self.driver.close()

    async def execute(self, tx: SignedTransaction) -> CertifiedTransactionEffects:
        """Execute through the quorum driver; later reads through this reader see it."""
        certificate = await self.driver.execute(tx)
        digest = certificate.data.transaction_digest
        self._last_write = digest
        for address in {tx.data.sender, *_owners(certificate.data)}:
            self._last_write_for[address] = digest
            self._last_write_for.move_to_end(address)
        while len(self._last_write_for) > MAX_TRACKED_ADDRESSES:
            self._last_write_for.popitem(last=False)
        return certificate

    def last_write_for(self, address: SomaAddress) -> TransactionDigest | None:
        """The last transaction certified here that `address` sent or that left it an
        object: what a read of that address's coins or balance must already include."""
        return self._last_write_for.get(address)

    async def read(
        self,
        call: Callable[[ValidatorClient], Awaitable[T]],
        about: SomaAddress | None = None,
    ) -> T:
        """Ask validators in turn until one answers. Read-your-writes: a validator that
        has not yet executed the last transaction this reader certified (and, for a
        read `about` an address, the last one that touched it: validators execute
        transactions on disjoint objects in any order) is waited for briefly, then
        skipped, so a balance read right after a transfer shows it."""
        needed = [d for d in (self._last_write, about and self.last_write_for(about)) if d]
        needed = list(dict.fromkeys(needed))
        start = next(self._next)
        last: Exception | None = None
        fallback: ValidatorClient | None = None
        for i in range(len(self.clients)):
            client = self.clients[(start + i) % len(self.clients)]
            try:
                if not await _has_executed(client, needed):
                    fallback = fallback or client
                    continue
                return await call(client)
            except ValidatorCallError as e:
                last = e
        if fallback is not None:
            try:
                return await call(fallback)
            except ValidatorCallError as e:
                last = e
        raise NoValidatorError(f"no validator answered: {last}")

    # --- ChainReader ---------------------------------------------------------------------

    async def get_object(self, object_id: ObjectID) -> Object | None:
        return (await self.read(lambda c: c.get_object(object_id))).object

    async def owned_objects(
        self, owner: SomaAddress, cursor: ObjectID | None, limit: int
    ) -> ObjectPage:
        page = await self.read(lambda c: c.get_owned_objects(owner, cursor, limit), owner)
        return Page(list(page.objects), page.next_cursor)

    async def coins(
        self, owner: SomaAddress, cursor: wire.CoinCursor | None, limit: int
    ) -> CoinPage:
        page = await self.read(lambda c: c.get_coins(owner, cursor, limit), owner)
        return Page(list(page.coins), page.next_cursor)

    async def balance(self, owner: SomaAddress) -> Balance:
        answer = await self.read(lambda c: c.get_balance(owner), owner)
        return answer.balance, answer.coins

    async def transaction(
        self, digest: TransactionDigest
    ) -> tuple[SignedTransaction, TransactionEffects | None] | None:
        answer = await self.read(lambda c: c.get_transaction(digest))
        if answer.transaction is None:
            return None
        return answer.transaction, None if answer.effects is None else answer.effects.data

    async def status(self) -> NodeStatus:
        return NodeStatus.from_wire(await self.read(lambda c: c.get_status()))

    def peers(self) -> list[Peer]:
        """A reader of the validators runs no P2P: it has no peers of its own."""
        return []

    async def certified_summary(self, index: int | None) -> CertifiedCommitSummary | None:
        return (await self.read(lambda c: c.get_certified_summary(index))).summary

    async def supply(self) -> NetworkSupply:
        """The supply as the first validator that answers has executed the chain."""
        return NetworkSupply.from_wire(await self.read(lambda c: c.get_supply()))

    async def commits(self, start: int, count: int, detail: bool) -> list[wire.CommitRecord]:
        """The first validator's records (`GetCommits`), its consensus commits included
        with `detail` where it still holds them."""
        return await self.read(lambda c: c.get_commits(start, count, detail))

    def committee_of(self, epoch: int) -> Committee | None:
        return self.driver.committees.of(epoch)

    async def recent_dag(self, rounds: int) -> RecentDag:
        return await self._validator_reads.recent_dag(rounds)

    async def effects_signatures(
        self, digest: TransactionDigest, effects: TransactionEffects
    ) -> EffectsSignatures:
        return await self._validator_reads.effects_signatures(digest, effects)


async def _has_executed(client: ValidatorClient, digests: list[TransactionDigest]) -> bool:
    for digest in digests:
        seen = await client.wait_for_effects(digest, READ_CATCH_UP_S)
        if seen.effects is None:
            return False
    return True


def _owners(effects: TransactionEffects) -> set[SomaAddress]:
    """The addresses that own an object the transaction wrote."""
    out = set()
    for change in effects.changed_objects:
        written = change.change.output_state
        if isinstance(written, ObjectOutWrite) and isinstance(written.owner, AddressOwner):
            out.add(written.owner.address)
    return out
