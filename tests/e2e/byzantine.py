"""A Byzantine validator for the multi-process tests: a gRPC server at a committee
member's consensus address that answers every honest peer with garbage.

Its block stream cycles through the ways a peer can lie: bytes that are not a block
batch at all, batches of undecodable blocks, blocks with a signature from the wrong key,
blocks claiming another author, and blocks it signed correctly that break the block
rules. Its fetch answers do not decode, and its answer to the amnesia guard is a block of
someone else. Counters say how much of each it sent.
"""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any

import grpc

from soma.consensus.network import tls, wire
from soma.consensus.network.server import channel_options
from soma.types.committee import Committee
from soma.types.consensus.block import Block, BlockRef, SignedBlock
from soma.types.crypto import NetworkKeyPair, ProtocolKeyPair
from soma.types.digests import BlockDigest
from soma.types.tls import tls_identity


class ByzantineServer:
    def __init__(
        self, committee: Committee, index: int, key: ProtocolKeyPair, network: NetworkKeyPair
    ) -> None:
        self._committee = committee
        self._index = index
        self._key = key
        self._tls = tls_identity(network)
        self._stranger = ProtocolKeyPair.generate()
        self.sent: collections.Counter[str] = collections.Counter()
        self._server = grpc.aio.server(options=channel_options())
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "SubscribeBlocks": grpc.unary_stream_rpc_method_handler(self._subscribe),
            "FetchBlocks": grpc.unary_unary_rpc_method_handler(self._garbage),
            "FetchCommits": grpc.unary_unary_rpc_method_handler(self._garbage),
            "FetchLatestBlocks": grpc.unary_unary_rpc_method_handler(self._latest),
            "GetLatestRounds": grpc.unary_unary_rpc_method_handler(self._garbage),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(wire.SERVICE, methods),)
        )

    async def start(self) -> None:
        address = self._committee.members[self._index].consensus_address
        members = [m.tls_certificate for m in self._committee.members]
        tls.listen(self._server, address, self._tls, members)
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(0)

    # --- lies ----------------------------------------------------------------------------

    def _block(self, author: int, round: int, key: ProtocolKeyPair) -> SignedBlock:
        size = self._committee.size
        ancestors = tuple(
            BlockRef(round - 1, a, BlockDigest(os.urandom(32)))
            for a in [author, *(x for x in range(size) if x != author)]
        )
        block = Block(0, round, author, 0, ancestors, (os.urandom(100),), ())
        return SignedBlock.sign(block, key)

    def _lies(self, round: int) -> list[tuple[str, bytes]]:
        own = self._index
        other = (own + 1) % self._committee.size
        no_parents = SignedBlock.sign(Block(0, round, own, 0, (), (), ()), self._key)
        # Bytes that are not a batch at all end the stream (the peer reconnects), so
        # they come last in each cycle.
        return [
            ("undecodable_blocks", wire.BlockBatch((b"\x01\x02\x03", os.urandom(300))).to_bytes()),
            (
                "bad_signature",
                wire.BlockBatch((self._block(own, round, self._stranger).to_bytes(),)).to_bytes(),
            ),
            (
                "other_author",
                wire.BlockBatch((self._block(other, round, self._key).to_bytes(),)).to_bytes(),
            ),
            ("no_ancestors", wire.BlockBatch((no_parents.to_bytes(),)).to_bytes()),
            ("not_a_batch", b"\xff" * 64),
        ]

    async def _subscribe(self, request: bytes, context: Any) -> Any:
        round = 1
        while True:
            for kind, data in self._lies(round):
                self.sent[kind] += 1
                yield data
                await asyncio.sleep(0.01)
            round += 1

    async def _garbage(self, request: bytes, context: Any) -> bytes:
        self.sent["garbage_answer"] += 1
        return os.urandom(50)

    async def _latest(self, request: bytes, context: Any) -> bytes:
        self.sent["latest_of_another"] += 1
        other = (self._index + 1) % self._committee.size
        return wire.BlockBatch((self._block(other, 5, self._key).to_bytes(),)).to_bytes()
