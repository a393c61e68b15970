"""The shapes of the HTTP API's requests and answers, as its OpenAPI document shows them.

Every response the API can give is described here, errors included, so a client (or
a tool such as schemathesis) can hold the server to its document: identifiers carry
their patterns (addresses 64 hex digits, object IDs up to 64 for the system objects'
short form, digests Base58), byte fields are base64 with their sizes, amounts are
non-negative integers. Parts whose layout follows the Rust-like types of
`soma.types` (a transaction's kind, an object's decoded contents, effects) are JSON
objects whose fields `soma.rpc.json_form` documents.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

#: An account address: 32 bytes as 64 hex digits, 0x optional.
ADDRESS_PATTERN = r"^(0[xX])?[0-9a-fA-F]{64}$"
#: An object ID: up to 64 hex digits (system objects have short forms such as 0x5).
OBJECT_ID_PATTERN = r"^(0[xX])?[0-9a-fA-F]{1,64}$"
#: A transaction digest: 32 bytes in Base58 (Bitcoin alphabet).
DIGEST_PATTERN = r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"
#: Standard base64 with padding.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
#: Where a page of coins starts, from a `next_cursor`: the balance as 16 hex digits
#: (any u64, and nothing else), a dash, the object ID.
COIN_CURSOR_PATTERN = r"^[0-9a-f]{16}-0x[0-9a-f]{64}$"
#: Most entries in one page, and the page size when none is asked for.
MAX_PAGE = 1000
DEFAULT_PAGE = 100
#: The largest signed transaction the API takes, in base64 characters (512 KiB of bytes).
MAX_TX_BASE64 = 4 * (512 * 1024 // 3 + 1)

U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$", description="32 bytes, 0x-hex")]
Digest = Annotated[str, Field(pattern=DIGEST_PATTERN, description="32 bytes, Base58")]


def _documented(pattern: str, min_length: int, max_length: int, description: str) -> Any:
    """A path parameter whose pattern is in the document but checked by the route's own
    parser, so a bad value gets the specific code (`INVALID_ADDRESS`, ...) and a message
    in plain words. tests/rpc/test_openapi.py holds parser and pattern to each other."""
    return Path(
        description=description,
        json_schema_extra={"pattern": pattern, "minLength": min_length, "maxLength": max_length},
    )


AddressPath = Annotated[
    str,
    _documented(ADDRESS_PATTERN, 64, 66, "An account address: 64 hex digits, 0x optional."),
]
ObjectIdPath = Annotated[
    str,
    _documented(OBJECT_ID_PATTERN, 1, 66, "An object ID: up to 64 hex digits, 0x optional."),
]
DigestPath = Annotated[
    str,
    _documented(DIGEST_PATTERN, 32, 44, "A transaction digest in Base58."),
]
IndexPath = Annotated[
    int, Path(ge=0, le=2**64 - 1, description="A global commit index (0 is genesis).")
]
LimitQuery = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE, description=f"Entries in the page (default {DEFAULT_PAGE})."),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Model):
    """Every error: a stable code and a one-line message."""

    code: str = Field(description="Stable, SCREAMING_SNAKE_CASE.", examples=["INVALID_ADDRESS"])
    message: str = Field(max_length=256, description="For people; quotes input only briefly.")


class FaucetRequest(_Model):
    # The pattern is documented, and checked by the route (code INVALID_ADDRESS).
    address: str = Field(
        description="The address to fund: 64 hex digits, 0x optional.",
        json_schema_extra={"pattern": ADDRESS_PATTERN, "minLength": 64, "maxLength": 66},
    )


class ExecuteRequest(_Model):
    tx_bytes: str = Field(
        pattern=BASE64_PATTERN,
        max_length=MAX_TX_BASE64,
        description="BCS bytes of a SignedTransaction, base64.",
    )


class Health(_Model):
    status: Literal["ok"]
    epoch: U64
    latest_commit: U64


class CommitteeMember(_Model):
    name: Hex32
    stake: U64
    protocol_key: str = Field(description="Ed25519 public key, base64.")
    network_key: str = Field(description="Ed25519 public key, base64.")
    tls_certificate: str = Field(
        description="DER TLS certificate bound to the network key, base64."
    )
    hostname: str
    network_address: str
    consensus_address: str
    p2p_address: str
    voting_power: int = Field(
        ge=0,
        le=10_000,
        description="The member's share of the total stake in basis points (of 10,000), "
        "rounded down.",
    )
    address: str = Field(description="Its validator service, host:port (= network_address).")
    account: Hex32 = Field(description="The validator's own account (its soma address).")


class Committee(_Model):
    epoch: U64
    total_stake: U64
    members: list[CommitteeMember]


class Fork(_Model):
    """The node's summary of a commit differs from the certified one: it halted there."""

    index: U64
    own_digest: Digest
    certified_digest: Digest


class Status(_Model):
    """Commit indices are global: they continue across epochs."""

    epoch: U64
    latest_commit: U64 = Field(description="The last commit the node executed.")
    latest_certified_commit: U64 = Field(
        description="The last commit executed whose summary is certified and equals the "
        "node's own: every commit up to it is verified."
    )
    state_root: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The state root after `latest_certified_commit`, hex.",
    )
    highest_certified_commit: U64 = Field(
        description="The highest commit the node knows certified."
    )
    sync_lag: U64 = Field(
        description="Commits between the highest known certified and the last verified."
    )
    fork: Fork | None = Field(description="Set once the node detected a fork and halted.")
    transaction_fee: U64
    min_validator_stake: U64 = Field(description="The least stake a validator joins with.")
    epoch_duration_ms: U64
    epoch_start_timestamp_ms: U64 = Field(description="When the current epoch began.")


class Supply(_Model):
    """Where the network's money is. `total` = `coins` + `stake` + `pending_fees`, and
    equals `genesis` while supply is conserved (no transaction creates or destroys
    money). Sums of u64 values, so they may exceed 2^64 - 1."""

    total: int = Field(ge=0)
    genesis: int = Field(ge=0, description="What the genesis transaction created.")
    coins: int = Field(ge=0, description="In live coins.")
    stake: int = Field(ge=0, description="Staked by validators, active, joining or leaving.")
    pending_fees: int = Field(
        ge=0, description="Fees charged in the current epoch, paid out at its change."
    )


class LatestCommit(_Model):
    epoch: U64
    index: U64


class CertifiedSummary(_Model):
    """A commit summary certified by 2f+1 stake (docs/state-sync.md)."""

    epoch: U64
    index: U64
    commit_digest: Digest
    previous_digest: Digest
    transactions_digest: Digest
    effects_digest: Digest
    state_root: str = Field(pattern=r"^[0-9a-f]{64}$")
    timestamp_ms: U64
    end_of_epoch: dict[str, Any] | None
    digest: Digest
    signers: list[Hex32] = Field(description="The authorities whose signatures certify it.")
    certificate: str = Field(
        pattern=BASE64_PATTERN, description="The CertifiedCommitSummary, BCS in base64."
    )


class ObjectRef(_Model):
    object_id: Hex32
    version: U64
    digest: Digest


class ObjectPage(_Model):
    objects: list[ObjectRef]
    next_cursor: Hex32 | None = Field(description="Pass as `cursor` for the next page.")


class Coin(_Model):
    object_id: Hex32
    version: U64
    digest: Digest
    balance: U64


class CoinPage(_Model):
    coins: list[Coin] = Field(description="Largest balance first, then by object ID.")
    next_cursor: str | None = Field(
        pattern=COIN_CURSOR_PATTERN, description="Pass as `cursor` for the next page."
    )


class Balance(_Model):
    address: Hex32
    balance: int = Field(ge=0, description="The sum of the address's coins.")
    coins: U64


class ObjectView(_Model):
    """An object at its live version, with its decoded contents in `data`."""

    model_config = ConfigDict(extra="allow")

    id: Hex32
    object_type: str
    version: U64
    owner: dict[str, Any]
    previous_transaction: Digest
    digest: Digest
    data: dict[str, Any]
    balance: U64 | None = Field(default=None, description="For coins: their balance.")


class TransactionView(_Model):
    digest: Digest
    transaction: dict[str, Any] = Field(description="The TransactionData, as JSON.")
    effects: dict[str, Any] | None = Field(description="Its effects once executed.")


class ExecutionResult(_Model):
    digest: Digest
    status: Literal["success", "failure"]
    fee: U64
    effects: dict[str, Any] = Field(description="What executing it did (`error` if it failed).")
    certificate: str = Field(
        pattern=BASE64_PATTERN, description="The effects certificate (BCS, base64)."
    )


class PeerView(_Model):
    """A P2P peer of the node serving the API."""

    peer_id: str = Field(pattern=r"^[0-9a-f]{64}$", description="Its network key, hex.")
    addresses: list[str]
    validator: bool = Field(description="A member of the current committee.")


# --- explorer reads ----------------------------------------------------------------------

#: Most DAG rounds one `/dag` answer covers, and most commits one `/commits` page lists.
MAX_DAG_ROUNDS = 50
MAX_COMMIT_PAGE = 50
U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]


class BlockRef(_Model):
    """A consensus block: its round, its author (index in the committee) and digest."""

    round: U32
    author: U32
    digest: Digest


class DagAuthority(_Model):
    index: U32
    name: Hex32
    hostname: str
    stake: U64


class DagBlock(_Model):
    round: U32
    author: U32
    digest: Digest
    ancestors: list[BlockRef] = Field(description="Its parents, in the order it lists them.")
    transactions: U32 = Field(description="Transactions and consensus entries it carries.")
    timestamp_ms: U64


class DagLeader(_Model):
    """A leader slot and what the commit rule decided about it."""

    round: U32
    authority: U32
    status: Literal["committed", "skipped", "undecided"]
    decided: Literal["direct", "indirect", "certified", "restored"] | None = Field(
        description="By the slot's own wave (direct), by a later committed leader "
        "(indirect), by the others (certified: installed from a certified commit), or not "
        "known (restored from the store after a restart); null while undecided."
    )
    block: BlockRef | None = Field(description="The committed leader block.")
    commit: U64 | None = Field(description="The commit it led (global index).")


class RecentDag(_Model):
    """One validator's view of the last rounds of the DAG."""

    validator: str = Field(description="The hostname of the validator that answered.")
    epoch: U64
    highest_round: U32
    low_round: U32 = Field(description="The lowest round covered.")
    authorities: list[DagAuthority]
    blocks: list[DagBlock] = Field(description="By (round, author, digest).")
    leaders: list[DagLeader] = Field(description="By (round, authority).")


class CommitItem(_Model):
    index: U64
    epoch: U64
    timestamp_ms: U64
    transactions: U64 = Field(description="All it executed, system transactions included.")
    user_transactions: U64
    leader: BlockRef | None = Field(description="Its leader block, where still known.")


class CommitList(_Model):
    commits: list[CommitItem] = Field(description="Newest first.")


class CommitView(_Model):
    """An executed commit: its transactions in execution order and, while a validator
    still holds its consensus commit, its leader and blocks."""

    index: U64
    epoch: U64
    timestamp_ms: U64
    transactions: list[Digest]
    user_transactions: U64
    leader: BlockRef | None
    blocks: list[BlockRef] | None = Field(description="Null once no validator holds them.")
    certified: bool = Field(description="Whether the node holds its certified summary.")
    signers: list[Hex32] = Field(description="Who signed its certified summary.")


class ThroughputBucket(_Model):
    start_ms: U64
    transactions: U64 = Field(description="User transactions of commits in the bucket.")
    commits: U64
    tps: float = Field(ge=0)


class Throughput(_Model):
    """User transactions per second over the last minutes, from the commits' consensus
    timestamps."""

    end_ms: U64
    bucket_ms: U64
    transactions: U64
    tps: float = Field(ge=0, description="The window's average.")
    buckets: list[ThroughputBucket] = Field(description="Oldest first.")


class TransactionDetails(_Model):
    digest: Digest
    sender: Hex32
    transaction: dict[str, Any] = Field(description="The TransactionData, as JSON.")
    inputs: list[dict[str, Any]] = Field(description="The objects it names as inputs.")
    status: Literal["success", "failure", "pending"] = Field(
        description="pending: known, not executed by this node yet."
    )
    fee: U64 | None = Field(description="The fee charged, once executed.")
    effects: dict[str, Any] | None
    signers: list[Hex32] = Field(
        description="The validators whose signatures over these effects verify (asked now)."
    )
    signed_stake: U64
    total_stake: U64
    certificate: str | None = Field(
        pattern=BASE64_PATTERN,
        description="Their signatures as an effects certificate (BCS, base64), once they "
        "hold a quorum of stake.",
    )


class SearchMatch(_Model):
    kind: Literal["transaction", "object", "address", "commit"]
    id: str = Field(description="The digest, 0x-hex ID or address, or commit index.")


class SearchResult(_Model):
    query: str
    matches: list[SearchMatch] = Field(description="Most specific first; empty if none.")
