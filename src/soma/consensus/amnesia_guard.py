"""The amnesia guard: before it proposes anything, a starting validator asks its peers
which round it last proposed in.

A validator whose store was wiped (a lost disk) or restored from an old backup would
otherwise start proposing at round 1 again (or where its old store ends) and sign a
second block for rounds it already signed, which honest peers see as equivocation. So on
every start the authority holds proposals, asks every peer for our latest block, and
waits until peers holding at least f+1 stake (the validity threshold: at least one of
them honest) have answered. Each answer is a block signed with our own protocol key, so
a peer can hide one but cannot invent one; the highest round among the verified answers
becomes the floor below which we never propose (with the last round in our own store,
whichever is higher). The blocks themselves go into the DAG like any other received
block, so the next proposal links the latest of them.

A restart with an intact store, or a fresh validator at the start of an epoch, takes the
same path: peers answer with what we hold already, or with nothing, which costs one
round trip.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.errors import BlockRejectedError
from soma.consensus.network import wire
from soma.consensus.network.client import ConsensusClient
from soma.consensus.network.server import now_ms
from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

#: Per-call timeout and the pause before asking the peers that have not answered again.
CALL_TIMEOUT_S = 2.0
RETRY_S = 0.5


@dataclasses.dataclass(frozen=True)
class OwnBlockRecovery:
    #: The highest round of a verified block of ours that a peer holds (0 if none).
    last_round: int
    #: Verified blocks of ours, by the peer that sent them.
    blocks: list[tuple[int, SignedBlock]]
    #: The peers whose answers counted.
    answered: list[int]


async def recover_last_own_block(
    committee: Committee,
    own_index: int,
    client: ConsensusClient,
    verifier: BlockVerifier,
    report_bad: Callable[[int, str], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> OwnBlockRecovery:
    """Ask peers for our latest block until f+1 stake of them has answered; peers that
    answer with anything but blocks of ours signed by us are reported and not counted."""
    threshold = committee.validity_threshold
    answered: dict[int, SignedBlock | None] = {}
    attempt = 0
    while True:
        pending = [p for p in range(committee.size) if p != own_index and p not in answered]
        results = await asyncio.gather(
            *(_ask(client, peer, own_index) for peer in pending), return_exceptions=True
        )
        for peer, result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                logger.debug(
                    "amnesia guard: %s did not answer: %s",
                    committee.members[peer].hostname or f"peer {peer}",
                    result,
                )
                continue
            try:
                answered[peer] = _check(result, own_index, verifier)
            except (SomaError, BlockRejectedError) as e:
                report_bad(peer, f"answered the amnesia guard with {e}")
        stake = sum(committee.members[p].stake for p in answered)
        if stake >= threshold:
            break
        attempt += 1
        if attempt % 10 == 1:
            logger.warning(
                "amnesia guard: %d of %d stake needed has answered; proposals wait",
                stake,
                threshold,
            )
        await sleep(RETRY_S)
    blocks = [(p, b) for p, b in sorted(answered.items()) if b is not None]
    last_round = max((b.round for _, b in blocks), default=0)
    return OwnBlockRecovery(last_round, blocks, sorted(answered))


async def _ask(client: ConsensusClient, peer: int, own_index: int) -> wire.BlockBatch:
    request = wire.FetchLatestBlocksRequest((own_index,))
    return await client.fetch_latest_blocks(peer, request, CALL_TIMEOUT_S)


def _check(batch: wire.BlockBatch, own_index: int, verifier: BlockVerifier) -> SignedBlock | None:
    """The verified block of ours in the answer (we asked for one authority, so at most
    one block); raises on anything else."""
    if len(batch.blocks) > 1:
        raise BlockRejectedError(f"{len(batch.blocks)} blocks where at most one was asked for")
    best: SignedBlock | None = None
    for data in batch.blocks:
        block = SignedBlock.from_bytes(data)
        if block.author != own_index:
            raise BlockRejectedError(f"{block}, a block of another authority")
        verifier.verify(block, now_ms())
        if best is None or block.round > best.round:
            best = block
    return best
