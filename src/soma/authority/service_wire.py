"""BCS messages of the validator service (`soma.validator.ValidatorService`), the API
that clients and the HTTP gateway call: submit a transaction, wait for its signed
effects, read objects, transactions and the validator's status.

Owner-side reads page: `GetOwnedObjects` (by object ID) and `GetCoins` (largest balance
first, then object ID) return at most `limit` entries from an inclusive cursor and the
cursor of the next page (None once the list is complete); `GetBalance` answers from the
validator's balance index, one read whatever the number of coins.

The batched pair (`SubmitTransactions`, `StreamEffects`) is what a busy client uses: one
call carries many transactions, and one stream returns the signed effects of many
digests as they become durable, so per-call costs are paid per batch, not per
transaction.

Two reads serve observers of the chain (the explorer): `GetRecentDag`, the blocks of
the validator's last DAG rounds and its leader decisions (only with consensus running:
a validator following by state sync refuses with `CONSENSUS_UNAVAILABLE`), and
`GetCommits`, what the validator recorded of consecutive executed commits (timestamps
and transaction counts; with `detail`, their transactions and the consensus commit,
leader and blocks, while its consensus store still holds it)."""

from __future__ import annotations

import enum

from soma.types.base import AuthorityName, ObjectID, SomaAddress
from soma.types.bcs import BcsStruct, u32, u64, u128
from soma.types.commit_summary import CertifiedCommitSummary
from soma.types.consensus.block import BlockRef
from soma.types.consensus.commit import Commit
from soma.types.digests import CommitSummaryDigest, TransactionDigest
from soma.types.effects import SignedTransactionEffects
from soma.types.object import Object, ObjectRef
from soma.types.signature_info import AuthoritySignInfo
from soma.types.system_state import SystemState
from soma.types.transaction import SignedTransaction

SERVICE = "soma.validator.ValidatorService"
SUBMIT = f"/{SERVICE}/SubmitTransaction"
WAIT_FOR_EFFECTS = f"/{SERVICE}/WaitForEffects"
GET_OBJECT = f"/{SERVICE}/GetObject"
GET_OWNED_OBJECTS = f"/{SERVICE}/GetOwnedObjects"
GET_TRANSACTION = f"/{SERVICE}/GetTransaction"
GET_STATUS = f"/{SERVICE}/GetStatus"
GET_CERTIFIED_SUMMARY = f"/{SERVICE}/GetCertifiedSummary"
SUBMIT_BATCH = f"/{SERVICE}/SubmitTransactions"
STREAM_EFFECTS = f"/{SERVICE}/StreamEffects"
GET_BALANCE = f"/{SERVICE}/GetBalance"
GET_COINS = f"/{SERVICE}/GetCoins"
GET_SUPPLY = f"/{SERVICE}/GetSupply"
GET_RECENT_DAG = f"/{SERVICE}/GetRecentDag"
GET_COMMITS = f"/{SERVICE}/GetCommits"

#: Longest a WaitForEffects call may ask the validator to wait.
MAX_WAIT_MS = 60_000
#: Most entries in one page of GetOwnedObjects or GetCoins (a larger limit is clamped).
MAX_PAGE = 1_000
#: The page size when a request's limit is 0.
DEFAULT_PAGE = 100
#: Most transactions in one SubmitTransactions call, and digests in one StreamEffects.
MAX_BATCH = 5_000
#: Largest request a validator takes (a full batch of transfers is about 1.6 MB).
MAX_REQUEST_BYTES = 8 * 1024 * 1024
#: What a client puts in one SubmitTransactions call at most (well under the limit).
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: Most effects bytes in one StreamEffects message (a validator starts another beyond).
MAX_EFFECTS_MESSAGE_BYTES = 4 * 1024 * 1024
#: Most rounds one GetRecentDag asks for (`soma.consensus.recent_dag.MAX_ROUNDS`).
MAX_DAG_ROUNDS = 50
#: Most commits in one GetCommits answer, and with `detail`.
MAX_COMMITS = 1_000
MAX_DETAILED_COMMITS = 50


class SubmitTransactionRequest(BcsStruct):
    transaction: SignedTransaction


class SubmitTransactionResponse(BcsStruct):
    digest: TransactionDigest


class WaitForEffectsRequest(BcsStruct):
    digest: TransactionDigest
    timeout_ms: u32


class WaitForEffectsResponse(BcsStruct):
    """The signed effects, or None if they were not there within the timeout."""

    effects: SignedTransactionEffects | None


class SubmitTransactionsRequest(BcsStruct):
    """Each entry is one SignedTransaction's BCS bytes, decoded on its own, so a
    malformed one is refused alone and does not sink the batch."""

    transactions: tuple[bytes, ...]


class SubmitRefusal(BcsStruct):
    """Why one transaction was refused: the stable code and the message of the error."""

    code: str
    message: str


class SubmitOutcome(BcsStruct):
    #: The transaction's digest (zero for bytes that are not a transaction).
    digest: TransactionDigest
    #: None when the transaction was accepted (offered to consensus, or already there).
    refusal: SubmitRefusal | None


class SubmitTransactionsResponse(BcsStruct):
    """One outcome per transaction, in request order."""

    outcomes: tuple[SubmitOutcome, ...]


class StreamEffectsRequest(BcsStruct):
    digests: tuple[TransactionDigest, ...]
    timeout_ms: u32


class EffectsItem(BcsStruct):
    """One transaction's effects, as BCS bytes: a client compares and hashes the bytes
    as they are and decodes one copy per transaction, not one per validator."""

    digest: TransactionDigest
    effects: bytes


class EffectsBatch(BcsStruct):
    """A message of the StreamEffects stream: effects that became durable together,
    and the validator's batch signature over them (`soma.types.signature_batch`: the
    Merkle root of the items' effects, leaves in item order, signed in the effects'
    epoch; all items of one message share it). The stream ends once every requested
    digest was sent, or at the timeout."""

    signature: AuthoritySignInfo
    items: tuple[EffectsItem, ...]


class GetObjectRequest(BcsStruct):
    object_id: ObjectID


class GetObjectResponse(BcsStruct):
    object: Object | None


def page_limit(limit: int) -> int:
    """A request's page size as served: 0 is `DEFAULT_PAGE`, beyond `MAX_PAGE` is
    `MAX_PAGE`."""
    return DEFAULT_PAGE if limit == 0 else min(limit, MAX_PAGE)


class GetOwnedObjectsRequest(BcsStruct):
    """The objects `owner` owns by ID, from `cursor` (inclusive; None: the first)."""

    owner: SomaAddress
    cursor: ObjectID | None
    #: 0: `DEFAULT_PAGE`; clamped to `MAX_PAGE`.
    limit: u32


class GetOwnedObjectsResponse(BcsStruct):
    objects: tuple[ObjectRef, ...]
    #: The ID of the first object not returned; None when the list is complete.
    next_cursor: ObjectID | None


class GetBalanceRequest(BcsStruct):
    owner: SomaAddress


class GetBalanceResponse(BcsStruct):
    """The total balance of the coins `owner` owns, and how many there are."""

    balance: u128
    coins: u64


class CoinCursor(BcsStruct):
    """A place in an owner's coins, which are ordered by balance descending, then by
    object ID ascending."""

    balance: u64
    object_id: ObjectID


class CoinEntry(BcsStruct):
    ref: ObjectRef
    balance: u64


class GetCoinsRequest(BcsStruct):
    """The coins `owner` owns, largest first, from `cursor` (inclusive; None: the
    largest)."""

    owner: SomaAddress
    cursor: CoinCursor | None
    #: 0: `DEFAULT_PAGE`; clamped to `MAX_PAGE`.
    limit: u32


class GetCoinsResponse(BcsStruct):
    coins: tuple[CoinEntry, ...]
    #: The first coin not returned; None when the list is complete.
    next_cursor: CoinCursor | None


class GetTransactionRequest(BcsStruct):
    digest: TransactionDigest


class GetTransactionResponse(BcsStruct):
    transaction: SignedTransaction | None
    effects: SignedTransactionEffects | None


class GetStatusRequest(BcsStruct):
    pass


class ForkReport(BcsStruct):
    """The node's summary of commit `index` differs from the certified one: it halted."""

    index: u64
    own_digest: CommitSummaryDigest
    certified_digest: CommitSummaryDigest


class GetStatusResponse(BcsStruct):
    """Commit indices are global (they continue across epochs)."""

    epoch: u64
    #: The last commit ordered by consensus here (validators; fullnodes: as executed).
    ordered_commit: u64
    #: The last commit executed (its summary built).
    latest_commit: u64
    #: The last commit executed whose summary is certified and equals this node's own:
    #: every commit up to it is verified. `state_root` is the state root after it.
    latest_certified_commit: u64
    state_root: bytes
    #: The highest commit known certified (by the committee's signatures or a peer).
    highest_certified_commit: u64
    fork: ForkReport | None
    system_state: SystemState


class GetCertifiedSummaryRequest(BcsStruct):
    """The certified summary of commit `index` (global), or the highest one held."""

    index: u64 | None


class GetCertifiedSummaryResponse(BcsStruct):
    summary: CertifiedCommitSummary | None


class GetSupplyRequest(BcsStruct):
    pass


class GetSupplyResponse(BcsStruct):
    """Where the network's money is, at the validator's last executed transaction:
    `coins` in live coins, `stake` staked by validators, `pending_fees` charged in the
    current epoch and not yet paid out; `total` their sum. `genesis` is what the genesis
    transaction created: `total` equals it while supply is conserved."""

    coins: u128
    stake: u128
    pending_fees: u128
    total: u128
    genesis: u128


class GetRecentDagRequest(BcsStruct):
    """The blocks of the last `rounds` rounds (1..`MAX_DAG_ROUNDS`) and their leaders."""

    rounds: u32


class DagAuthority(BcsStruct):
    """A committee member as the DAG names it: by its index, in committee order."""

    name: AuthorityName
    hostname: str
    stake: u64


class DagBlock(BcsStruct):
    reference: BlockRef
    #: Its parents, in the order the block lists them.
    ancestors: tuple[BlockRef, ...]
    #: How many transactions it carries (user transactions and consensus entries).
    transactions: u32
    timestamp_ms: u64


class LeaderState(enum.IntEnum):
    UNDECIDED = 0
    COMMITTED = 1
    SKIPPED = 2


class DecidedBy(enum.IntEnum):
    """How a slot was decided (`soma.consensus.decision_log.DecisionSource`)."""

    DIRECT = 0
    INDIRECT = 1
    #: Installed from a certified commit: the others decided it.
    CERTIFIED = 2
    #: Read back from the store after a restart.
    RESTORED = 3


class DagLeader(BcsStruct):
    """A leader slot of the DAG and what the commit rule said of it."""

    round: u32
    authority: u32
    state: LeaderState
    #: None while undecided.
    decided_by: DecidedBy | None
    #: The committed leader block and the commit it led (global index), if committed.
    block: BlockRef | None
    commit_index: u64 | None


class GetRecentDagResponse(BcsStruct):
    epoch: u64
    #: The committee, by authority index.
    authorities: tuple[DagAuthority, ...]
    highest_round: u32
    #: The lowest round the answer covers: fewer rounds than asked if the DAG holds no
    #: more in memory (garbage collection) or the answer would be too large.
    low_round: u32
    #: By (round, author, digest).
    blocks: tuple[DagBlock, ...]
    #: The leader slots of those rounds, by (round, authority).
    leaders: tuple[DagLeader, ...]


class GetCommitsRequest(BcsStruct):
    """Executed commits from `start` (global), consecutive, at most `count` (at most
    `MAX_COMMITS`, or `MAX_DETAILED_COMMITS` with `detail`)."""

    start: u64
    count: u32
    detail: bool


class CommitRecord(BcsStruct):
    """An executed commit as the node recorded it."""

    index: u64
    epoch: u64
    timestamp_ms: u64
    #: Everything the commit executed: its prologue, user transactions, an epoch change.
    transactions: u64
    #: The transactions users sent (without the system ones).
    user_transactions: u64
    #: With `detail`: the transactions, in execution order; empty otherwise.
    digests: tuple[TransactionDigest, ...]
    #: With `detail`: the consensus commit (its leader and blocks) if the node's
    #: consensus store of the current epoch still holds it.
    commit: Commit | None


class GetCommitsResponse(BcsStruct):
    records: tuple[CommitRecord, ...]
