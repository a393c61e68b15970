"""BlockVerifier: a valid block passes; each way of breaking one rule is refused with its
own typed error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.context import Context
from soma.consensus.errors import (
    BlockAncestorRoundError,
    BlockBadSignatureError,
    BlockCommitVotesError,
    BlockDuplicateAncestorAuthorError,
    BlockGenesisRoundError,
    BlockInsufficientParentsError,
    BlockOwnAncestorError,
    BlockRejectedError,
    BlockTimestampError,
    BlockTooLargeError,
    BlockUnknownAncestorAuthorError,
    BlockUnknownAuthorError,
    BlockWrongEpochError,
)
from soma.consensus.local_committee import generate_committee
from soma.consensus.parameters import ConsensusParameters
from soma.types.consensus.block import Block, BlockRef, SignedBlock, genesis_blocks
from soma.types.consensus.commit_ref import CommitRef
from soma.types.digests import BlockDigest, CommitDigest

COMMITTEE, KEYS = generate_committee(4, seed=3)
PARAMS = ConsensusParameters(
    max_block_transactions=3, max_block_bytes=100, max_transaction_bytes=60
)
VERIFIER = BlockVerifier(Context(COMMITTEE, 0, PARAMS))
NOW = 10_000


def ref(round: int, author: int, n: int = 1) -> BlockRef:
    return BlockRef(round, author, BlockDigest(bytes([n]) * 32))


def make(
    round: int = 5,
    author: int = 1,
    ancestors: tuple[BlockRef, ...] | None = None,
    epoch: int = 0,
    timestamp_ms: int = NOW,
    transactions: tuple[bytes, ...] = (b"tx",),
    commit_votes: tuple[CommitRef, ...] = (),
    signer: int | None = None,
) -> SignedBlock:
    if ancestors is None:
        others = [a for a in range(4) if a != author]
        ancestors = (ref(round - 1, author), *(ref(round - 1, a) for a in others))
    block = Block(epoch, round, author, timestamp_ms, ancestors, transactions, commit_votes)
    key = KEYS[author if signer is None else signer].protocol
    return SignedBlock.sign(block, key)


def test_valid_block_passes() -> None:
    VERIFIER.verify(make(), NOW)
    # Exactly a quorum of parents (3 of 4), plus an older ancestor, is enough.
    VERIFIER.verify(make(ancestors=(ref(4, 1), ref(4, 2), ref(4, 3), ref(2, 0))), NOW)
    # Round 1 links genesis.
    genesis = tuple(b.reference() for b in genesis_blocks(0, 4))
    VERIFIER.verify(make(round=1, ancestors=(genesis[1], genesis[0], genesis[2])), NOW)


CASES: list[tuple[str, type[BlockRejectedError], Callable[[], SignedBlock]]] = [
    ("wrong epoch", BlockWrongEpochError, lambda: make(epoch=1)),
    ("unknown author", BlockUnknownAuthorError, lambda: _unknown_author()),
    ("signed by another key", BlockBadSignatureError, lambda: make(signer=2)),
    ("tampered signature", BlockBadSignatureError, lambda: _tampered()),
    ("round 0", BlockGenesisRoundError, lambda: make(round=0, ancestors=())),
    (
        "ancestor at its own round",
        BlockAncestorRoundError,
        lambda: make(ancestors=(ref(4, 1), ref(4, 2), ref(4, 3), ref(5, 0))),
    ),
    (
        "ancestor above its round",
        BlockAncestorRoundError,
        lambda: make(ancestors=(ref(4, 1), ref(4, 2), ref(4, 3), ref(9, 0))),
    ),
    (
        "two ancestors of one author",
        BlockDuplicateAncestorAuthorError,
        lambda: make(ancestors=(ref(4, 1), ref(4, 2), ref(4, 3), ref(3, 2))),
    ),
    (
        "ancestor author outside the committee",
        BlockUnknownAncestorAuthorError,
        lambda: make(ancestors=(ref(4, 1), ref(4, 2), ref(4, 3), ref(4, 7))),
    ),
    (
        "own previous block not first",
        BlockOwnAncestorError,
        lambda: make(ancestors=(ref(4, 2), ref(4, 1), ref(4, 3))),
    ),
    ("no ancestors", BlockOwnAncestorError, lambda: make(ancestors=())),
    (
        "parents below quorum",
        BlockInsufficientParentsError,
        lambda: make(ancestors=(ref(4, 1), ref(4, 2), ref(3, 3))),
    ),
    (
        "timestamp beyond the forward drift",
        BlockTimestampError,
        lambda: make(timestamp_ms=NOW + PARAMS.max_forward_time_drift_ms + 1),
    ),
    ("too many transactions", BlockTooLargeError, lambda: make(transactions=(b"t",) * 4)),
    ("too many bytes", BlockTooLargeError, lambda: make(transactions=(b"x" * 50,) * 3)),
    ("oversized transaction", BlockTooLargeError, lambda: make(transactions=(b"x" * 61,))),
    (
        "two votes for one commit index",
        BlockCommitVotesError,
        lambda: make(
            commit_votes=(
                CommitRef(3, CommitDigest(b"\x01" * 32)),
                CommitRef(3, CommitDigest(b"\x02" * 32)),
            )
        ),
    ),
]


def _unknown_author() -> SignedBlock:
    block = Block(0, 5, 9, NOW, (ref(4, 9), ref(4, 1), ref(4, 2), ref(4, 3)), (), ())
    return SignedBlock.sign(block, KEYS[0].protocol)


def _tampered() -> SignedBlock:
    good = make()
    signature = bytearray(bytes(good.signature))
    signature[0] ^= 1
    return SignedBlock(good.block, type(good.signature)(bytes(signature)))


@pytest.mark.parametrize(("name", "error", "build"), CASES, ids=[c[0] for c in CASES])
def test_rejections(
    name: str, error: type[BlockRejectedError], build: Callable[[], SignedBlock]
) -> None:
    with pytest.raises(error) as info:
        VERIFIER.verify(build(), NOW)
    assert isinstance(info.value, BlockRejectedError)
    assert info.value.code.startswith("BLOCK_")
    assert str(info.value)


def test_timestamp_at_the_drift_limit_passes() -> None:
    VERIFIER.verify(make(timestamp_ms=NOW + PARAMS.max_forward_time_drift_ms), NOW)


def test_timestamp_below_an_ancestor_is_refused_once_ancestors_are_known() -> None:
    parent = make(round=4, author=2, timestamp_ms=NOW)
    child = make(timestamp_ms=NOW - 1)
    VERIFIER.verify(child, NOW)  # structure alone is fine
    with pytest.raises(BlockTimestampError):
        VERIFIER.check_ancestors(child, [parent])
    VERIFIER.check_ancestors(make(timestamp_ms=NOW), [parent])


def test_quorum_is_by_stake_not_count() -> None:
    committee, keys = generate_committee(4, seed=4, stakes=[1, 1, 1, 7])
    verifier = BlockVerifier(Context(committee, 0, PARAMS))
    heavy = next(i for i, m in enumerate(committee.members) if m.stake == 7)
    light = [i for i in range(4) if i != heavy]
    author = light[0]

    def block(parents: list[int]) -> SignedBlock:
        ancestors = (ref(4, author), *(ref(4, p) for p in parents if p != author))
        unsigned = Block(0, 5, author, NOW, ancestors, (), ())
        return SignedBlock.sign(unsigned, keys[author].protocol)

    # Three of four authors, but only 3 of 10 stake (a quorum is 7).
    with pytest.raises(BlockInsufficientParentsError):
        verifier.verify(block(light), NOW)
    # Two authors holding 8 of 10 stake are a quorum.
    verifier.verify(block([author, heavy]), NOW)
