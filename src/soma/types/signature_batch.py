"""Batch signatures: one authority signature over a Merkle root of many messages.

A validator returns the effects of hundreds of transactions at a time. Signing each
costs it one Ed25519 signature per transaction, and costs the client one verification
per transaction per validator, which was most of a client's CPU. Signing the Merkle
root of the batch instead costs one signature per batch; each message keeps a proof
(its position and the sibling hashes up to the root), so a certificate for one
transaction still stands alone: the effects, and for each signer its signature over a
root plus the proof that the effects are a leaf under it.

Hashes (Blake2b-256, domain-separated so a leaf can never pass for an inner node):
- leaf = H("soma::BatchLeaf::" || index as u32 LE || intent || BCS(message)): the
  intent binds the scope the message is signed as, so effects can never be taken for
  another kind of message, and the index binds its position;
- node = H("soma::BatchNode::" || left || right);
- a level with an odd number of nodes carries its last node up unchanged (no
  duplication, so no two different batches share a root by repeating a leaf);
- root = H("soma::BatchRoot::" || count as u32 LE || top node): the count is bound too.
With position and count both hashed in, a proof has exactly one valid encoding (a
certificate cannot be re-encoded with another index or count and still verify).
The signed value is the root under the `SIGNED_BATCH` intent scope, with the epoch, as
every authority signature (`authority_signing_digest`).
"""

from __future__ import annotations

from collections.abc import Sequence

from soma.types.bcs import BcsStruct, Bytes32, u32
from soma.types.digests import blake2b256
from soma.types.error import InvalidValueError
from soma.types.intent import Intent, IntentScope

_LEAF_TAG = b"soma::BatchLeaf::"
_NODE_TAG = b"soma::BatchNode::"
_ROOT_TAG = b"soma::BatchRoot::"
#: Most messages under one root (a proof then has at most 20 siblings).
MAX_BATCH_LEAVES = 1 << 20
#: What a batch signature is signed as.
BATCH_INTENT = Intent.soma(IntentScope.SIGNED_BATCH)


def batch_leaf(index: int, intent: Intent, message_bcs: bytes) -> bytes:
    """The leaf of the message at `index` of a batch."""
    return blake2b256(_LEAF_TAG + index.to_bytes(4, "little") + intent.to_bytes() + message_bcs)


def batch_leaves(intent: Intent, messages: Sequence[bytes]) -> list[bytes]:
    return [batch_leaf(i, intent, m) for i, m in enumerate(messages)]


def _root(count: int, top: bytes) -> bytes:
    return blake2b256(_ROOT_TAG + count.to_bytes(4, "little") + top)


def _node(left: bytes, right: bytes) -> bytes:
    return blake2b256(_NODE_TAG + left + right)


class MerkleProof(BcsStruct):
    """Where a leaf sits in a batch of `count` leaves, and the hashes that lead from it
    to the root (bottom up; levels where the leaf's node is carried up have none)."""

    index: u32
    count: u32
    siblings: tuple[Bytes32, ...]

    def root_of(self, leaf: bytes) -> bytes:
        """The root this proof leads to from `leaf` (made with this proof's index);
        raises if the proof is malformed (wrong number of siblings for the position)."""
        if not 0 <= self.index < self.count <= MAX_BATCH_LEAVES:
            raise InvalidValueError(f"leaf {self.index} of a batch of {self.count}")
        node = leaf
        index, width, used = self.index, self.count, 0
        siblings = self.siblings
        while width > 1:
            if index % 2 == 1:
                if used >= len(siblings):
                    raise InvalidValueError("the batch proof is too short")
                node = _node(siblings[used], node)
                used += 1
            elif index + 1 < width:
                if used >= len(siblings):
                    raise InvalidValueError("the batch proof is too short")
                node = _node(node, siblings[used])
                used += 1
            index //= 2
            width = (width + 1) // 2
        if used != len(siblings):
            raise InvalidValueError("the batch proof is too long")
        return _root(self.count, node)


class MerkleTree:
    """All levels of the tree over `leaves` (from `batch_leaves`), for the root and
    each leaf's proof."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not 0 < len(leaves) <= MAX_BATCH_LEAVES:
            raise InvalidValueError(f"a batch holds 1 to {MAX_BATCH_LEAVES} leaves")
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            above = [_node(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            levels.append(above)
        self._levels = levels

    @property
    def root(self) -> bytes:
        return _root(len(self._levels[0]), self._levels[-1][0])

    def __len__(self) -> int:
        return len(self._levels[0])

    def proof(self, index: int) -> MerkleProof:
        count = len(self._levels[0])
        if not 0 <= index < count:
            raise IndexError(f"leaf {index} of {count}")
        siblings: list[bytes] = []
        position = index
        for level in self._levels[:-1]:
            partner = position ^ 1
            if partner < len(level):
                siblings.append(level[partner])
            position //= 2
        return MerkleProof(index, count, tuple(siblings))
