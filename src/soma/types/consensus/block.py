"""Consensus blocks.

Each validator proposes one block per round. A block names its ancestors by `BlockRef`
(round, author, digest); the uncertified DAG those references form is what Mysticeti
commits from. A `SignedBlock` is the block with its author's protocol-key signature over
the intent-wrapped block bytes; its digest (over the signed bytes) is the block's identity,
so two different signed blocks from one author in one round (an equivocation) always have
different references.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Self

from soma.types.bcs import BcsStruct, u32, u64
from soma.types.consensus.commit_ref import CommitRef
from soma.types.crypto import Ed25519PublicKey, Ed25519Signature, ProtocolKeyPair
from soma.types.digests import BlockDigest, Hashed
from soma.types.intent import Intent, IntentScope, intent_message_digest

#: Genesis blocks carry no signature: every node derives the same ones from the committee.
GENESIS_SIGNATURE = Ed25519Signature(bytes(64))


class Slot(NamedTuple):
    """A (round, authority) position in the DAG; at most one honest block fills it."""

    round: int
    authority: int

    def __str__(self) -> str:
        return f"{_author_name(self.authority)}{self.round}"


class BlockRef(BcsStruct):
    """A reference to a block: ordered by (round, author, digest), the order blocks are
    linearized in."""

    round: u32
    author: u32
    digest: BlockDigest

    def slot(self) -> Slot:
        return Slot(self.round, self.author)

    def sort_key(self) -> tuple[int, int, bytes]:
        return (self.round, self.author, self.digest)

    def __lt__(self, other: BlockRef) -> bool:
        return (self.round, self.author, self.digest) < (other.round, other.author, other.digest)

    def __str__(self) -> str:
        return f"{_author_name(self.author)}{self.round}({str(self.digest)[:8]})"


class Block(BcsStruct):
    """The signed content of a block. The author's own previous block is the first
    ancestor; `commit_votes` carries references to commits the author made since its
    previous block (how peers learn the quorum's commit index)."""

    epoch: u64
    round: u32
    author: u32
    timestamp_ms: u64
    ancestors: tuple[BlockRef, ...]
    transactions: tuple[bytes, ...]
    commit_votes: tuple[CommitRef, ...]

    INTENT: ClassVar[Intent] = Intent.consensus(IntentScope.CONSENSUS_BLOCK)

    def signing_digest(self) -> bytes:
        return intent_message_digest(self.INTENT, self.to_bytes())


class SignedBlock(Hashed[BlockDigest]):
    """A block and its author's signature. Decoded blocks keep their bytes, so a block
    received from a peer is stored and forwarded without being encoded again."""

    DIGEST_TAG = "SignedBlock"
    DIGEST_TYPE = BlockDigest

    block: Block
    signature: Ed25519Signature

    @classmethod
    def sign(cls, block: Block, key: ProtocolKeyPair) -> Self:
        block_bytes = block.to_bytes()
        signature = key.sign(intent_message_digest(Block.INTENT, block_bytes))
        signed = cls(block, signature)
        # A signed block's encoding is its block's, then the 64 signature bytes: build it
        # from the bytes just signed rather than encoding every transaction again.
        signed._keep_bytes(block_bytes + signature)
        return signed

    def verify_signature(self, key: Ed25519PublicKey) -> None:
        """Raise `InvalidSignatureError` unless `key` signed this block. The signed bytes
        are read in place from the signed block's own (received) bytes: neither
        re-encoded nor copied."""
        inner = memoryview(self.to_bytes())[: -len(self.signature)]
        key.verify(intent_message_digest(Block.INTENT, inner), self.signature)

    # Shortcuts used on every hot path of the DAG; the reference is computed once.

    @property
    def round(self) -> int:
        return self.block.round

    @property
    def author(self) -> int:
        return self.block.author

    @property
    def timestamp_ms(self) -> int:
        return self.block.timestamp_ms

    @property
    def ancestors(self) -> tuple[BlockRef, ...]:
        return self.block.ancestors

    @property
    def transactions(self) -> tuple[bytes, ...]:
        return self.block.transactions

    def reference(self) -> BlockRef:
        ref: BlockRef | None = self.__dict__.get("_reference")
        if ref is None:
            ref = BlockRef(self.block.round, self.block.author, self.digest())
            self.__dict__["_reference"] = ref
        return ref

    def slot(self) -> Slot:
        return Slot(self.block.round, self.block.author)

    def __str__(self) -> str:
        return str(self.reference())


def genesis_blocks(epoch: int, committee_size: int) -> list[SignedBlock]:
    """The round-0 block of every authority: empty, unsigned, identical on every node."""
    return [
        SignedBlock(Block(epoch, 0, author, 0, (), (), ()), GENESIS_SIGNATURE)
        for author in range(committee_size)
    ]


def _author_name(index: int) -> str:
    """A, B, ... Z for the first 26 authorities (as in the DAG text format), then [26]."""
    return chr(ord("A") + index) if index < 26 else f"[{index}]"
