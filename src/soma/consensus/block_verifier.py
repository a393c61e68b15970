"""Verification of blocks received from peers, before they reach the DAG.

Two stages. `verify` needs only the block, the committee and the receiver's clock; it
runs on every block as it arrives. `check_ancestors` needs the ancestor blocks, so the
block manager runs it once they are all known (a block's timestamp must not go below any
ancestor's, which keeps commit timestamps monotonic).
"""

from __future__ import annotations

from collections.abc import Sequence

from soma.consensus.context import Context
from soma.consensus.errors import (
    BlockAncestorRoundError,
    BlockBadSignatureError,
    BlockCommitVotesError,
    BlockDuplicateAncestorAuthorError,
    BlockGenesisRoundError,
    BlockInsufficientParentsError,
    BlockOwnAncestorError,
    BlockTimestampError,
    BlockTooLargeError,
    BlockUnknownAncestorAuthorError,
    BlockUnknownAuthorError,
    BlockWrongEpochError,
)
from soma.types.consensus.block import SignedBlock
from soma.types.error import InvalidSignatureError


class BlockVerifier:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._committee = context.committee
        self._params = context.parameters

    def verify(self, signed: SignedBlock, now_ms: int) -> None:
        """Raise a `BlockRejectedError` subclass unless `signed` is a well-formed block
        signed by its author for this epoch."""
        block = signed.block
        committee = self._committee
        if block.epoch != committee.epoch:
            raise BlockWrongEpochError(f"block of epoch {block.epoch} in epoch {committee.epoch}")
        if not 0 <= block.author < committee.size:
            raise BlockUnknownAuthorError(f"author {block.author} is not in the committee")
        if block.round == 0:
            raise BlockGenesisRoundError("blocks at round 0 are genesis blocks")
        self._check_size(signed)
        self._check_ancestor_refs(signed)
        if block.timestamp_ms > now_ms + self._params.max_forward_time_drift_ms:
            raise BlockTimestampError(
                f"block {signed} is timestamped {block.timestamp_ms - now_ms} ms in the future"
            )
        indices = [v.index for v in block.commit_votes]
        if len(set(indices)) != len(indices):
            raise BlockCommitVotesError(f"block {signed} votes twice for one commit index")
        # The signature last: it is the expensive check.
        try:
            signed.verify_signature(committee.members[block.author].protocol_key)
        except InvalidSignatureError:
            raise BlockBadSignatureError(
                f"block {signed} is not signed by authority {block.author}"
            ) from None

    def _check_size(self, signed: SignedBlock) -> None:
        txs = signed.block.transactions
        params = self._params
        if len(txs) > params.max_block_transactions:
            raise BlockTooLargeError(
                f"block {signed} has {len(txs)} transactions, at most "
                f"{params.max_block_transactions} are allowed"
            )
        total = 0
        for tx in txs:
            if len(tx) > params.max_transaction_bytes:
                raise BlockTooLargeError(f"block {signed} carries a {len(tx)}-byte transaction")
            total += len(tx)
        if total > params.max_block_bytes:
            raise BlockTooLargeError(
                f"block {signed} carries {total} transaction bytes, at most "
                f"{params.max_block_bytes} are allowed"
            )

    def _check_ancestor_refs(self, signed: SignedBlock) -> None:
        block = signed.block
        committee = self._committee
        if not block.ancestors or block.ancestors[0].author != block.author:
            raise BlockOwnAncestorError(
                f"block {signed}: its author's previous block must be the first ancestor"
            )
        seen: set[int] = set()
        parent_stake = 0
        for ref in block.ancestors:
            if not 0 <= ref.author < committee.size:
                raise BlockUnknownAncestorAuthorError(
                    f"block {signed} links authority {ref.author}, outside the committee"
                )
            if ref.round >= block.round:
                raise BlockAncestorRoundError(
                    f"block {signed} links {ref} at or above its own round"
                )
            if ref.author in seen:
                raise BlockDuplicateAncestorAuthorError(
                    f"block {signed} links two blocks of authority {ref.author}"
                )
            seen.add(ref.author)
            if ref.round == block.round - 1:
                parent_stake += committee.members[ref.author].stake
        if parent_stake < committee.quorum_threshold:
            raise BlockInsufficientParentsError(
                f"block {signed} links round {block.round - 1} blocks of stake {parent_stake}, "
                f"a quorum is {committee.quorum_threshold}"
            )

    def check_ancestors(self, signed: SignedBlock, ancestors: Sequence[SignedBlock]) -> None:
        """With the ancestor blocks known: the timestamp may not go below any of theirs."""
        for ancestor in ancestors:
            if signed.timestamp_ms < ancestor.timestamp_ms:
                raise BlockTimestampError(
                    f"block {signed} is timestamped before its ancestor {ancestor}"
                )
