"""ChainReader: what the HTTP API reads and executes through, whichever node serves it.

The API is served by a process in front of the validators (`soma start` today: reads
from the validators, `RemoteReader`) or by a fullnode (reads from its own executed
state, `LocalReader`). The routes call this protocol and nothing else, so they answer
the same on both. Each implementation keeps one promise the API documents: once
`execute` has returned, a read through the same reader sees the transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from soma.authority import service_wire as wire
from soma.authority.indexes import Balance
from soma.authority.paging import Page
from soma.orchestrator.validator_reads import EffectsSignatures, RecentDag
from soma.types.base import ObjectID, SomaAddress
from soma.types.commit_summary import CertifiedCommitSummary
from soma.types.committee import Committee
from soma.types.crypto import Ed25519PublicKey
from soma.types.digests import TransactionDigest
from soma.types.effects import CertifiedTransactionEffects, TransactionEffects
from soma.types.object import Object, ObjectRef
from soma.types.system_state import SystemState
from soma.types.transaction import SignedTransaction

#: A page of an owner's objects by ID; the cursor is the first ID not returned.
ObjectPage = Page[ObjectRef, ObjectID]
#: A page of an owner's coins, largest first; the cursor is the first coin not returned.
CoinPage = Page[wire.CoinEntry, wire.CoinCursor]


@dataclasses.dataclass(frozen=True, slots=True)
class NodeStatus:
    """The serving node's view of the chain: the fields of a validator's status answer
    (`service_wire.GetStatusResponse`), so both readers give the same value. Commit
    indices are global (they continue across epochs)."""

    epoch: int
    #: The last commit ordered here (validators: by consensus; fullnodes: as handed to
    #: execution).
    ordered_commit: int
    #: The last commit executed (its summary built).
    latest_commit: int
    #: The last executed commit whose summary is certified and equals this node's own;
    #: `state_root` is the state root after it.
    latest_certified_commit: int
    state_root: bytes
    #: The highest commit known certified (by the committee's signatures or a peer).
    highest_certified_commit: int
    fork: wire.ForkReport | None
    system_state: SystemState

    @classmethod
    def from_wire(cls, status: wire.GetStatusResponse) -> NodeStatus:
        return cls(
            epoch=status.epoch,
            ordered_commit=status.ordered_commit,
            latest_commit=status.latest_commit,
            latest_certified_commit=status.latest_certified_commit,
            state_root=status.state_root,
            highest_certified_commit=status.highest_certified_commit,
            fork=status.fork,
            system_state=status.system_state,
        )

    @property
    def sync_lag(self) -> int:
        """Commits between the highest known certified one and the last verified here."""
        return max(0, self.highest_certified_commit - self.latest_certified_commit)

    @property
    def transaction_fee(self) -> int:
        """The fee of the current epoch (what a client's gas budget must cover)."""
        return self.system_state.parameters.transaction_fee


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkSupply:
    """Where the network's money is, as the serving node has executed the chain: in
    live coins, staked by validators, and fees charged in the current epoch and not yet
    paid out; `total` is their sum and `genesis` what genesis created (they are equal
    while the supply is conserved, as it always must be)."""

    coins: int
    stake: int
    pending_fees: int
    total: int
    genesis: int

    @classmethod
    def from_wire(cls, answer: wire.GetSupplyResponse) -> NetworkSupply:
        return cls(
            coins=answer.coins,
            stake=answer.stake,
            pending_fees=answer.pending_fees,
            total=answer.total,
            genesis=answer.genesis,
        )


class ChainReader(Protocol):
    """Reads of the chain and execution of transactions, for the API and the faucet.

    Page `limit`s are as a validator serves them (`service_wire.page_limit`: 0 is the
    default page, more than `MAX_PAGE` is `MAX_PAGE`); cursors are inclusive. Errors are
    `SomaError`s the API maps to statuses: a refusal (`RemoteError`) is a 400, a network
    that cannot answer 503, no answer in time 504.
    """

    @property
    def committee(self) -> Committee:
        """The current committee."""
        ...

    def committee_of(self, epoch: int) -> Committee | None:
        """The committee of `epoch` (its members sign that epoch's summaries), None if
        this reader does not know it."""
        ...

    async def get_object(self, object_id: ObjectID) -> Object | None:
        """The object at its live version; None if it does not exist (or was deleted)."""
        ...

    async def owned_objects(
        self, owner: SomaAddress, cursor: ObjectID | None, limit: int
    ) -> ObjectPage: ...

    async def coins(
        self, owner: SomaAddress, cursor: wire.CoinCursor | None, limit: int
    ) -> CoinPage: ...

    async def balance(self, owner: SomaAddress) -> Balance:
        """(total balance, number of coins) of `owner`, from the balance index."""
        ...

    async def transaction(
        self, digest: TransactionDigest
    ) -> tuple[SignedTransaction, TransactionEffects | None] | None:
        """The transaction and, once executed, its effects; None if it is not known."""
        ...

    async def status(self) -> NodeStatus: ...

    async def certified_summary(self, index: int | None) -> CertifiedCommitSummary | None:
        """The certified summary of commit `index` (global), or the highest one held."""
        ...

    async def supply(self) -> NetworkSupply:
        """Where the network's money is (see `NetworkSupply`)."""
        ...

    async def execute(self, tx: SignedTransaction) -> CertifiedTransactionEffects:
        """Execute a verified signed transaction on the network; returns its effects
        certificate once later reads through this reader see the transaction."""
        ...

    def peers(self) -> list[Peer]:
        """The P2P peers of the node serving the API (empty where it has none)."""
        ...

    async def commits(self, start: int, count: int, detail: bool) -> list[wire.CommitRecord]:
        """Records of the executed commits from `start` (global), consecutive, at most
        `count` (1..`MAX_COMMITS`, 1..`MAX_DETAILED_COMMITS` with `detail`): timestamps
        and transaction counts; with `detail`, the transactions and, where a validator
        still holds it, the consensus commit (leader and blocks)."""
        ...

    async def recent_dag(self, rounds: int) -> RecentDag:
        """A validator's last `rounds` DAG rounds and leader decisions."""
        ...

    async def effects_signatures(
        self, digest: TransactionDigest, effects: TransactionEffects
    ) -> EffectsSignatures:
        """The validators that signed these effects of `digest` (asked now)."""
        ...


@dataclasses.dataclass(frozen=True)
class Peer:
    """A peer as the API shows it: its id (network key), where it listens, and whether
    it is a member of the current committee."""

    peer_id: Ed25519PublicKey
    addresses: tuple[str, ...]
    validator: bool
