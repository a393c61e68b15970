"""Messages validators exchange about blocks: the payloads of the consensus network,
over gRPC or inside the simulator. A message travels as the bytes of one
`ConsensusMessage`; blocks inside travel as their serialized signed bytes and are verified
one by one on arrival."""

from __future__ import annotations

from soma.types.bcs import BcsEnum, u32, u64
from soma.types.consensus.block import BlockRef


class ConsensusMessage(BcsEnum):
    pass


class BlockPush(ConsensusMessage, tag=0):
    """One of the sender's own blocks (a peer may only push blocks it authored)."""

    block: bytes


class FetchBlocksRequest(ConsensusMessage, tag=1):
    """Ask a peer for blocks by reference. `highest_accepted_rounds[a]` is the highest
    round of authority a the asker holds, so the peer can add the ancestors it lacks."""

    request_id: u64
    refs: tuple[BlockRef, ...]
    highest_accepted_rounds: tuple[u32, ...]


class FetchBlocksResponse(ConsensusMessage, tag=2):
    request_id: u64
    blocks: tuple[bytes, ...]


class SubscribeRequest(ConsensusMessage, tag=3):
    """Ask a peer to (re)send its own blocks above `after_round`: how a stream resumes
    after a disconnection, a partition or a restart."""

    after_round: u32
