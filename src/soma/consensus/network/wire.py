"""Payloads of the consensus gRPC service, as BCS structs.

Requests and responses travel as raw bytes (generic gRPC handlers, no protoc); each is one
of these structs. Blocks and commits inside travel as their own serialized bytes so the
receiver verifies them one by one and stores them without encoding them again.
"""

from __future__ import annotations

from soma.types.bcs import BcsStruct, u32, u64
from soma.types.consensus.block import BlockRef

SERVICE = "soma.consensus.ConsensusService"
SUBSCRIBE_BLOCKS = f"/{SERVICE}/SubscribeBlocks"
FETCH_BLOCKS = f"/{SERVICE}/FetchBlocks"
FETCH_COMMITS = f"/{SERVICE}/FetchCommits"
FETCH_LATEST_BLOCKS = f"/{SERVICE}/FetchLatestBlocks"
GET_LATEST_ROUNDS = f"/{SERVICE}/GetLatestRounds"

#: gRPC metadata key carrying the caller's signed handshake.
AUTH_METADATA_KEY = "soma-peer-auth-bin"


class SubscribeBlocksRequest(BcsStruct):
    """Stream the server's own blocks above `after_round`, then each new one."""

    after_round: u32


class BlockBatch(BcsStruct):
    """Blocks, each as its signed bytes (one stream message may carry several)."""

    blocks: tuple[bytes, ...]


class FetchBlocksRequest(BcsStruct):
    """Blocks by reference; `highest_accepted_rounds[a]` is the highest round of
    authority a the caller holds, so the server may add the ancestors it lacks."""

    refs: tuple[BlockRef, ...]
    highest_accepted_rounds: tuple[u32, ...]


class FetchCommitsRequest(BcsStruct):
    """Commits with index in [start, end]."""

    start: u64
    end: u64


class FetchCommitsResponse(BcsStruct):
    """Commits in index order and blocks whose commit votes certify the last one."""

    commits: tuple[bytes, ...]
    certifier_blocks: tuple[bytes, ...]


class FetchLatestBlocksRequest(BcsStruct):
    """The latest block of each listed authority (amnesia recovery asks for its own)."""

    authorities: tuple[u32, ...]


class LatestRoundsRequest(BcsStruct):
    pass


class LatestRoundsResponse(BcsStruct):
    """Per authority: the highest round received from it, and accepted into the DAG."""

    highest_received: tuple[u32, ...]
    highest_accepted: tuple[u32, ...]
