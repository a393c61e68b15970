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
transaction."""

from __future__ import annotations

from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsStruct, u32, u64, u128
from soma.types.commit_summary import CertifiedCommitSummary
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
