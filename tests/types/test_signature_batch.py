"""Batch signatures: the Merkle tree and proofs of `soma.types.signature_batch`, and the
batch quorum scheme `Ed25519BatchQuorumSignInfo` built from them."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types.digests import TransactionDigest, blake2b256
from soma.types.effects import (
    CertifiedTransactionEffects,
    ExecutionSuccess,
    TransactionEffects,
)
from soma.types.error import (
    DuplicateSignerError,
    InsufficientStakeError,
    InvalidQuorumSignatureError,
    InvalidSignatureError,
    InvalidValueError,
    UnknownAuthorityError,
    WrongEpochError,
)
from soma.types.intent import Intent, IntentScope
from soma.types.signature_batch import (
    BATCH_INTENT,
    MAX_BATCH_LEAVES,
    MerkleProof,
    MerkleTree,
    batch_leaf,
    batch_leaves,
)
from soma.types.signature_info import (
    AuthorityQuorumSignInfo,
    AuthoritySignInfo,
    BatchSignature,
    Ed25519BatchQuorumSignInfo,
    Ed25519QuorumSignInfo,
)
from tests.types.conftest import KeyedCommittee, build_committee, seed

INTENT = TransactionEffects.INTENT
LEAF_TAG = b"soma::BatchLeaf::"
NODE_TAG = b"soma::BatchNode::"
ROOT_TAG = b"soma::BatchRoot::"

# --- helpers ---------------------------------------------------------------------------------


def messages_for(count: int, salt: bytes = b"") -> list[bytes]:
    """`count` distinct messages."""
    return [salt + i.to_bytes(4, "little") for i in range(count)]


def leaves_for(count: int, salt: bytes = b"") -> list[bytes]:
    return batch_leaves(INTENT, messages_for(count, salt))


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def node(left: bytes, right: bytes) -> bytes:
    """An inner node as docs/formats.md defines it."""
    return blake2b256(NODE_TAG + left + right)


def root(count: int, top: bytes) -> bytes:
    return blake2b256(ROOT_TAG + u32(count) + top)


def reference_root(leaves: list[bytes]) -> bytes:
    """The root as the format describes it: pair up each level, carry an odd last node,
    then bind the count."""
    level = list(leaves)
    while len(level) > 1:
        above = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            above.append(level[-1])
        level = above
    return root(len(leaves), level[0])


def flip(value: bytes, bit: int = 0) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def claimed_root(proof: MerkleProof, message: bytes) -> bytes | None:
    """The root a verifier gets for `message` under `proof` (the leaf made with the
    proof's own index, as Ed25519BatchQuorumSignInfo.verify does); None if invalid."""
    try:
        return proof.root_of(batch_leaf(proof.index, INTENT, message))
    except InvalidValueError:
        return None


def max_siblings(count: int) -> int:
    return max(0, (count - 1).bit_length())


def partners(index: int, count: int) -> int:
    """How many siblings a proof for leaf `index` of `count` has."""
    found = 0
    while count > 1:
        if index % 2 == 1 or index + 1 < count:
            found += 1
        index //= 2
        count = (count + 1) // 2
    return found


sizes = st.integers(min_value=1, max_value=300)
salts = st.binary(max_size=8)


# --- the tree and its proofs -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(count=sizes, salt=salts)
def test_every_leaf_proof_leads_to_the_root(count: int, salt: bytes) -> None:
    messages = messages_for(count, salt)
    leaves = batch_leaves(INTENT, messages)
    assert leaves == [batch_leaf(i, INTENT, m) for i, m in enumerate(messages)]
    tree = MerkleTree(leaves)
    assert len(tree) == count
    assert tree.root == reference_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert (proof.index, proof.count) == (i, count)
        assert len(proof.siblings) == partners(i, count) <= max_siblings(count)
        assert proof.root_of(leaf) == tree.root
        assert claimed_root(proof, messages[i]) == tree.root


def test_every_size_up_to_300_exhaustively() -> None:
    """Not sampled: every size and every leaf, so no odd shape is missed."""
    for count in range(1, 301):
        leaves = leaves_for(count, b"exhaustive")
        tree = MerkleTree(leaves)
        for i in range(count):
            assert tree.proof(i).root_of(leaves[i]) == tree.root


@settings(max_examples=80, deadline=None)
@given(count=st.integers(min_value=2, max_value=300), salt=salts, data=st.data())
def test_a_proof_for_one_leaf_never_validates_another(
    count: int, salt: bytes, data: st.DataObject
) -> None:
    messages = messages_for(count, salt)
    leaves = batch_leaves(INTENT, messages)
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, count - 1), label="i")
    j = data.draw(st.integers(0, count - 1).filter(lambda j: j != i), label="j")
    proof = tree.proof(i)
    # Message j under leaf i's proof, however its leaf is made...
    assert claimed_root(proof, messages[j]) != tree.root
    assert proof.root_of(leaves[j]) != tree.root
    # ...and with leaf i's siblings claimed at position j, neither message gets there.
    moved = dataclasses.replace(proof, index=j)
    assert claimed_root(moved, messages[j]) != tree.root
    assert claimed_root(moved, messages[i]) != tree.root


@settings(max_examples=60, deadline=None)
@given(count=st.integers(min_value=2, max_value=300), salt=salts, data=st.data())
def test_changing_any_sibling_breaks_the_proof(
    count: int, salt: bytes, data: st.DataObject
) -> None:
    leaves = leaves_for(count, salt)
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, count - 1), label="i")
    proof = tree.proof(i)
    assert proof.siblings  # two leaves or more: every leaf has a partner somewhere
    bit = data.draw(st.integers(0, 255), label="bit")
    for k in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[k] = flip(siblings[k], bit)
        forged = dataclasses.replace(proof, siblings=tuple(siblings))
        assert forged.root_of(leaves[i]) != tree.root
    # Swapping two siblings (same hashes, another order) breaks it too.
    if len(proof.siblings) >= 2 and proof.siblings[0] != proof.siblings[1]:
        swapped = (proof.siblings[1], proof.siblings[0], *proof.siblings[2:])
        assert dataclasses.replace(proof, siblings=swapped).root_of(leaves[i]) != tree.root


def test_changing_the_index_breaks_the_proof_exhaustively() -> None:
    """For every size up to 64 and every leaf: claiming any other position in the same
    batch, with the same siblings, never leads to the root (with the leaf made for the
    claimed position, or even with the original leaf)."""
    for count in range(2, 65):
        messages = messages_for(count, b"index")
        leaves = batch_leaves(INTENT, messages)
        tree = MerkleTree(leaves)
        for i in range(count):
            proof = tree.proof(i)
            for j in range(count):
                if j != i:
                    moved = dataclasses.replace(proof, index=j)
                    assert claimed_root(moved, messages[i]) != tree.root, (count, i, j)
                    with contextlib.suppress(InvalidValueError):
                        assert moved.root_of(leaves[i]) != tree.root, (count, i, j)


def test_changing_the_count_breaks_the_proof_exhaustively() -> None:
    """No other (index, count) claim, with the same siblings, leads any message of a
    batch to its root: a proof has exactly one valid encoding."""
    for count in range(1, 17):
        messages = messages_for(count, b"count")
        leaves = batch_leaves(INTENT, messages)
        tree = MerkleTree(leaves)
        for i in range(count):
            proof = tree.proof(i)
            for other_count in range(1, 40):
                for other_index in range(other_count):
                    if (other_index, other_count) == (i, count):
                        continue
                    moved = MerkleProof(other_index, other_count, proof.siblings)
                    assert claimed_root(moved, messages[i]) != tree.root, (
                        count,
                        i,
                        other_count,
                        other_index,
                    )
                    # Even the tree's own leaf, with only the count changed.
                    if other_index == i:
                        with contextlib.suppress(InvalidValueError):
                            assert moved.root_of(leaves[i]) != tree.root


def test_a_count_with_another_number_of_partners_is_invalid() -> None:
    """Claimed under a count where the leaf meets partners on another number of levels,
    a proof has too few or too many siblings: invalid, never another root."""
    for count in range(1, 33):
        leaves = leaves_for(count, b"partners")
        tree = MerkleTree(leaves)
        for i in range(count):
            proof = tree.proof(i)
            for other in range(i + 1, 80):
                if partners(i, other) != len(proof.siblings):
                    with pytest.raises(InvalidValueError):
                        dataclasses.replace(proof, count=other).root_of(leaves[i])


def test_an_index_outside_the_batch_is_invalid() -> None:
    tree = MerkleTree(leaves_for(5))
    proof = tree.proof(4)
    leaf = leaves_for(5)[4]
    for index, count in [(5, 5), (6, 5), (0, 0), (1, 0), (1, 1)]:
        with pytest.raises(InvalidValueError):
            MerkleProof(index, count, proof.siblings).root_of(leaf)
    with pytest.raises(InvalidValueError):
        MerkleProof(0, MAX_BATCH_LEAVES + 1, ()).root_of(leaf)


@settings(max_examples=60, deadline=None)
@given(count=sizes, salt=salts, data=st.data())
def test_too_short_or_too_long_sibling_lists_are_invalid(
    count: int, salt: bytes, data: st.DataObject
) -> None:
    leaves = leaves_for(count, salt)
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, count - 1), label="i")
    proof = tree.proof(i)
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    for longer in [(*proof.siblings, extra), (extra, *proof.siblings)]:
        with pytest.raises(InvalidValueError, match="too long"):
            dataclasses.replace(proof, siblings=longer).root_of(leaves[i])
    if proof.siblings:
        cut = data.draw(st.integers(0, len(proof.siblings) - 1), label="cut")
        shorter = proof.siblings[:cut]
        with pytest.raises(InvalidValueError, match="too short"):
            dataclasses.replace(proof, siblings=shorter).root_of(leaves[i])


@settings(max_examples=100, deadline=None)
@given(count=sizes, salt=salts, data=st.data())
def test_proof_bcs_round_trip(count: int, salt: bytes, data: st.DataObject) -> None:
    leaves = leaves_for(count, salt)
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, count - 1), label="i")
    proof = tree.proof(i)
    raw = proof.to_bytes()
    # index u32 LE, count u32 LE, ULEB128 length, 32 bytes per sibling.
    assert raw[:4] == u32(i)
    assert raw[4:8] == u32(count)
    assert raw[8] == len(proof.siblings)
    assert raw[9:] == b"".join(proof.siblings)
    back = MerkleProof.from_bytes(raw)
    assert back == proof
    assert back.root_of(leaves[i]) == tree.root


def test_proof_golden_bytes() -> None:
    proof = MerkleProof(1, 3, (b"a" * 32,))
    assert proof.to_bytes() == bytes.fromhex("010000000300000001") + b"a" * 32


def test_leaf_node_and_root_hashes_are_domain_separated() -> None:
    prefix = u32(0) + INTENT.to_bytes()
    # Two 32-byte values whose concatenation is exactly a leaf preimage: the index and
    # the intent followed by a message.
    left = prefix + seed("left", 0)[: 32 - len(prefix)]
    right = seed("right", 0)
    message = left[len(prefix) :] + right
    leaf = batch_leaf(0, INTENT, message)
    assert leaf == blake2b256(LEAF_TAG + left + right)
    inner = node(left, right)
    assert leaf != inner
    assert MerkleTree([left, right]).root == root(2, inner)
    # A root is never a leaf or an inner node over the same bytes either.
    one = MerkleTree([leaf]).root
    assert one == root(1, leaf) == blake2b256(ROOT_TAG + u32(1) + leaf)
    assert one not in (leaf, inner)
    # The leaf binds the intent and the position.
    assert batch_leaf(0, Intent.soma(IntentScope.TRANSACTION_DATA), message) != leaf
    assert batch_leaf(1, INTENT, message) != leaf
    assert batch_leaf(7, INTENT, message) == blake2b256(
        LEAF_TAG + u32(7) + INTENT.to_bytes() + message
    )


def test_a_message_repeated_in_a_batch_has_a_leaf_per_position() -> None:
    leaves = batch_leaves(INTENT, [b"same", b"same", b"same"])
    assert len(set(leaves)) == 3
    tree = MerkleTree(leaves)
    for i in range(3):
        assert claimed_root(tree.proof(i), b"same") == tree.root


def test_an_odd_level_carries_its_last_node() -> None:
    a, b, c, d, e = leaves_for(5, b"odd")
    assert MerkleTree([a]).root == root(1, a)
    assert MerkleTree([a, b]).root == root(2, node(a, b))
    assert MerkleTree([a, b, c]).root == root(3, node(node(a, b), c))
    assert MerkleTree([a, b, c, d, e]).root == root(5, node(node(node(a, b), node(c, d)), e))
    # The carried leaf meets no partner on the levels it is carried through.
    assert MerkleTree([a, b, c]).proof(2).siblings == (node(a, b),)
    assert MerkleTree([a, b, c, d, e]).proof(4).siblings == (node(node(a, b), node(c, d)),)
    # No duplication: repeating the last leaf makes another batch with another root.
    assert MerkleTree([a, b, c]).root != MerkleTree([a, b, c, c]).root
    assert MerkleTree([a, b, c, c]).root == root(4, node(node(a, b), node(c, c)))


def test_tree_bounds() -> None:
    with pytest.raises(InvalidValueError):
        MerkleTree([])
    tree = MerkleTree(leaves_for(3))
    for index in (-1, 3, 10):
        with pytest.raises(IndexError):
            tree.proof(index)


def test_the_leaf_order_matters() -> None:
    messages = messages_for(6, b"order")
    tree = MerkleTree(batch_leaves(INTENT, messages))
    assert tree.root != MerkleTree(batch_leaves(INTENT, list(reversed(messages)))).root
    swapped = [messages[1], messages[0], *messages[2:]]
    assert tree.root != MerkleTree(batch_leaves(INTENT, swapped)).root


# --- Ed25519BatchQuorumSignInfo --------------------------------------------------------------

EPOCH = 3
MESSAGE = b"the effects every validator signed"
OTHER_MESSAGE = b"effects nobody signed"


@pytest.fixture
def kc4() -> KeyedCommittee:
    return build_committee([1, 1, 1, 1], epoch=EPOCH)


def batch_with(message: bytes, position: int, size: int, label: str) -> list[bytes]:
    """A batch of `size` messages holding `message` at `position`."""
    out = [seed(label, i) for i in range(size)]
    out[position] = message
    return out


@dataclasses.dataclass
class SignedBatch:
    """One signer's batch: the tree over the messages and its signature over the root."""

    messages: list[bytes]
    tree: MerkleTree
    signature: AuthoritySignInfo

    def proof_of(self, message: bytes) -> MerkleProof:
        return self.tree.proof(self.messages.index(message))


def sign_batch(
    kc: KeyedCommittee, index: int, messages: list[bytes], epoch: int | None = None
) -> SignedBatch:
    tree = MerkleTree(batch_leaves(INTENT, messages))
    signature = AuthoritySignInfo.create(
        kc.keys[index], kc.epoch if epoch is None else epoch, BATCH_INTENT, tree.root
    )
    return SignedBatch(messages, tree, signature)


def batches(kc: KeyedCommittee, message: bytes = MESSAGE) -> list[SignedBatch]:
    """Each member's own batch holding `message` (different sizes and positions)."""
    return [
        sign_batch(kc, i, batch_with(message, i % (i + 2), i + 2 + 3 * i, f"batch-{i}"))
        for i in range(kc.committee.size)
    ]


def certify(
    kc: KeyedCommittee, signed: list[SignedBatch], indices: list[int], message: bytes = MESSAGE
) -> Ed25519BatchQuorumSignInfo:
    return Ed25519BatchQuorumSignInfo.from_batch_signatures(
        kc.committee, [(signed[i].signature, signed[i].proof_of(message)) for i in indices]
    )


def test_a_quorum_of_batch_signatures_verifies(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    for subset in [*itertools.combinations(range(4), 3), (0, 1, 2, 3)]:
        cert = certify(kc4, signed, list(subset))
        assert cert.epoch == EPOCH
        assert cert.signer_indices() == list(subset)
        assert len(cert.signatures) == len(subset)
        cert.verify(kc4.committee, INTENT, MESSAGE)
        # Signers given in any order come out in index order.
        shuffled = Ed25519BatchQuorumSignInfo.from_batch_signatures(
            kc4.committee,
            [(signed[i].signature, signed[i].proof_of(MESSAGE)) for i in reversed(subset)],
        )
        assert shuffled == cert


@settings(max_examples=25, deadline=None)
@given(
    stakes=st.lists(st.integers(1, 20), min_size=1, max_size=7),
    data=st.data(),
)
def test_batch_quorum_verifies_exactly_with_enough_stake(
    stakes: list[int], data: st.DataObject
) -> None:
    kc = build_committee(stakes, epoch=EPOCH, key_offset=100)
    committee = kc.committee
    signed = []
    for i in range(committee.size):
        size = data.draw(st.integers(1, 40), label=f"size-{i}")
        position = data.draw(st.integers(0, size - 1), label=f"position-{i}")
        signed.append(sign_batch(kc, i, batch_with(MESSAGE, position, size, f"h-{i}")))
    subset = data.draw(
        st.lists(st.integers(0, committee.size - 1), unique=True, min_size=1), label="subset"
    )
    cert = certify(kc, signed, subset)
    stake = sum(committee.members[i].stake for i in subset)
    if stake >= committee.quorum_threshold:
        cert.verify(committee, INTENT, MESSAGE)
    else:
        with pytest.raises(InsufficientStakeError):
            cert.verify(committee, INTENT, MESSAGE)
    # Any threshold up to the signers' stake is met, one more is not.
    cert.verify(committee, INTENT, MESSAGE, threshold=stake)
    with pytest.raises(InsufficientStakeError):
        cert.verify(committee, INTENT, MESSAGE, threshold=stake + 1)


def test_below_quorum_stake_fails(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    for subset in itertools.combinations(range(4), 2):
        with pytest.raises(InsufficientStakeError):
            certify(kc4, signed, list(subset)).verify(kc4.committee, INTENT, MESSAGE)
    unequal = build_committee([1, 2, 3, 4], epoch=EPOCH, key_offset=20)
    signed = batches(unequal)
    certify(unequal, signed, [2, 3]).verify(unequal.committee, INTENT, MESSAGE)  # 7 of 10
    with pytest.raises(InsufficientStakeError):
        certify(unequal, signed, [0, 1, 2]).verify(unequal.committee, INTENT, MESSAGE)  # 6


def test_an_empty_certificate_never_verifies(kc4: KeyedCommittee) -> None:
    empty = Ed25519BatchQuorumSignInfo.from_batch_signatures(kc4.committee, [])
    with pytest.raises(InsufficientStakeError):
        empty.verify(kc4.committee, INTENT, MESSAGE)
    with pytest.raises(InvalidQuorumSignatureError):
        empty.verify(kc4.committee, INTENT, MESSAGE, threshold=0)


def test_a_signature_over_another_root_fails(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    # Member 0 signed a batch without the message; the proof is from its real batch.
    elsewhere = sign_batch(kc4, 0, [OTHER_MESSAGE, seed("x", 1)])
    parts = [(elsewhere.signature, signed[0].proof_of(MESSAGE))]
    parts += [(signed[i].signature, signed[i].proof_of(MESSAGE)) for i in (1, 2)]
    cert = Ed25519BatchQuorumSignInfo.from_batch_signatures(kc4.committee, parts)
    with pytest.raises(InvalidSignatureError, match="index 0"):
        cert.verify(kc4.committee, INTENT, MESSAGE)


def test_a_proof_from_another_batch_fails(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    # Member 1's signature, with the proof of the message in member 2's batch: a valid
    # proof, but of another root.
    parts = [
        (signed[0].signature, signed[0].proof_of(MESSAGE)),
        (signed[1].signature, signed[2].proof_of(MESSAGE)),
        (signed[2].signature, signed[2].proof_of(MESSAGE)),
    ]
    cert = Ed25519BatchQuorumSignInfo.from_batch_signatures(kc4.committee, parts)
    with pytest.raises(InvalidSignatureError, match="index 1"):
        cert.verify(kc4.committee, INTENT, MESSAGE)
    # A proof of another message of the same batch leads to the right root only from
    # that message.
    same_batch = dataclasses.replace(
        signed[1].proof_of(MESSAGE), index=(signed[1].proof_of(MESSAGE).index + 1) % 3
    )
    parts[1] = (signed[1].signature, same_batch)
    cert = Ed25519BatchQuorumSignInfo.from_batch_signatures(kc4.committee, parts)
    with pytest.raises((InvalidSignatureError, InvalidQuorumSignatureError)):
        cert.verify(kc4.committee, INTENT, MESSAGE)


def test_a_malformed_proof_is_an_invalid_quorum_signature(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    proof = signed[2].proof_of(MESSAGE)
    too_long = dataclasses.replace(proof, siblings=(*proof.siblings, b"\x00" * 32))
    outside = dataclasses.replace(proof, index=proof.count)
    for bad in (too_long, outside):
        parts = [(signed[i].signature, signed[i].proof_of(MESSAGE)) for i in (0, 1)]
        parts.append((signed[2].signature, bad))
        cert = Ed25519BatchQuorumSignInfo.from_batch_signatures(kc4.committee, parts)
        with pytest.raises(InvalidQuorumSignatureError, match="index 2"):
            cert.verify(kc4.committee, INTENT, MESSAGE)


def test_another_message_or_scope_fails(kc4: KeyedCommittee) -> None:
    cert = certify(kc4, batches(kc4), [0, 1, 2])
    with pytest.raises(InvalidSignatureError):
        cert.verify(kc4.committee, INTENT, OTHER_MESSAGE)
    with pytest.raises(InvalidSignatureError):
        cert.verify(kc4.committee, Intent.soma(IntentScope.TRANSACTION_DATA), MESSAGE)


def test_wrong_epoch_fails(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    cert = certify(kc4, signed, [0, 1, 2])
    next_epoch = build_committee([1, 1, 1, 1], epoch=EPOCH + 1)
    assert next_epoch.committee.names() == kc4.committee.names()
    with pytest.raises(WrongEpochError):
        cert.verify(next_epoch.committee, INTENT, MESSAGE)
    # Relabelling the certificate with the new epoch does not make old signatures valid.
    with pytest.raises(InvalidSignatureError):
        dataclasses.replace(cert, epoch=EPOCH + 1).verify(next_epoch.committee, INTENT, MESSAGE)
    # A signature of another epoch cannot be assembled into this epoch's certificate.
    stale = sign_batch(kc4, 0, [MESSAGE], epoch=EPOCH - 1)
    with pytest.raises(WrongEpochError):
        Ed25519BatchQuorumSignInfo.from_batch_signatures(
            kc4.committee, [(stale.signature, stale.proof_of(MESSAGE))]
        )


def test_a_duplicate_signer_is_refused(kc4: KeyedCommittee) -> None:
    signed = batches(kc4)
    again = sign_batch(kc4, 1, [MESSAGE, OTHER_MESSAGE])
    with pytest.raises(DuplicateSignerError):
        Ed25519BatchQuorumSignInfo.from_batch_signatures(
            kc4.committee,
            [
                (signed[1].signature, signed[1].proof_of(MESSAGE)),
                (signed[0].signature, signed[0].proof_of(MESSAGE)),
                (again.signature, again.proof_of(MESSAGE)),
            ],
        )


def test_a_non_member_is_refused(kc4: KeyedCommittee) -> None:
    outsider = build_committee([1], epoch=EPOCH, key_offset=50)
    theirs = sign_batch(outsider, 0, [MESSAGE])
    with pytest.raises(UnknownAuthorityError):
        Ed25519BatchQuorumSignInfo.from_batch_signatures(
            kc4.committee, [(theirs.signature, theirs.proof_of(MESSAGE))]
        )


def test_bitmap_and_signature_count_mismatches(kc4: KeyedCommittee) -> None:
    cert = certify(kc4, batches(kc4), [0, 1, 2])
    assert cert.signers == b"\x07"
    for signers in (b"", b"\x07\x00"):
        with pytest.raises(InvalidQuorumSignatureError):
            dataclasses.replace(cert, signers=signers).verify(kc4.committee, INTENT, MESSAGE)
    # A bit beyond the committee of 4 (bit 4 of the one byte).
    with pytest.raises(UnknownAuthorityError):
        dataclasses.replace(cert, signers=b"\x17").verify(kc4.committee, INTENT, MESSAGE)
    # Three signers but two signatures, or four bits set for three signatures.
    with pytest.raises(InvalidQuorumSignatureError):
        dataclasses.replace(cert, signatures=cert.signatures[:2]).verify(
            kc4.committee, INTENT, MESSAGE
        )
    with pytest.raises(InvalidQuorumSignatureError):
        dataclasses.replace(cert, signers=b"\x0f").verify(kc4.committee, INTENT, MESSAGE)
    # Signatures moved to other signers' bits.
    with pytest.raises(InvalidSignatureError):
        dataclasses.replace(cert, signers=b"\x0e").verify(kc4.committee, INTENT, MESSAGE)


def test_batch_signatures_are_not_plain_quorum_signatures(kc4: KeyedCommittee) -> None:
    """A signature over a root is no signature over the message itself."""
    cert = certify(kc4, batches(kc4), [0, 1, 2])
    plain = Ed25519QuorumSignInfo(
        cert.epoch, cert.signers, tuple(part.signature for part in cert.signatures)
    )
    with pytest.raises(InvalidSignatureError):
        plain.verify(kc4.committee, INTENT, MESSAGE)


def test_one_message_batches_verify(kc4: KeyedCommittee) -> None:
    signed = [sign_batch(kc4, i, [MESSAGE]) for i in range(4)]
    cert = certify(kc4, signed, [1, 2, 3])
    assert all(part.proof == MerkleProof(0, 1, ()) for part in cert.signatures)
    cert.verify(kc4.committee, INTENT, MESSAGE)


# --- on the wire -----------------------------------------------------------------------------


def effects_for(digest: TransactionDigest, epoch: int = EPOCH) -> TransactionEffects:
    return TransactionEffects(
        status=ExecutionSuccess(),
        executed_epoch=epoch,
        transaction_digest=digest,
        dependencies=(),
        changed_objects=(),
        gas_object_index=None,
        gas_used=7,
        lamport_version=2,
    )


def test_batch_quorum_bcs_round_trip(kc4: KeyedCommittee) -> None:
    cert = certify(kc4, batches(kc4), [0, 2, 3])
    raw = cert.to_bytes()
    assert raw[0] == 1  # the batch variant's tag
    back = AuthorityQuorumSignInfo.from_bytes(raw)
    assert isinstance(back, Ed25519BatchQuorumSignInfo)
    assert back == cert
    assert all(isinstance(part, BatchSignature) for part in back.signatures)
    back.verify(kc4.committee, INTENT, MESSAGE)


def test_certified_effects_with_a_batch_quorum_round_trip(kc4: KeyedCommittee) -> None:
    effects = effects_for(TransactionDigest(seed("tx", 1)))
    data = effects.to_bytes()
    others = [effects_for(TransactionDigest(seed("tx", n))).to_bytes() for n in range(2, 9)]
    signed = []
    for i in range(4):
        messages = [*others[: i + 1], data, *others[i + 1 :]]
        signed.append(sign_batch(kc4, i, messages))
    quorum = certify(kc4, signed, [0, 1, 3], message=data)
    cert = CertifiedTransactionEffects(effects, quorum)
    cert.verify(kc4.committee)
    back = CertifiedTransactionEffects.from_bytes(cert.to_bytes())
    assert back == cert
    assert isinstance(back.auth_signature, Ed25519BatchQuorumSignInfo)
    back.verify(kc4.committee)
    # Under another transaction's effects the same signatures do not verify.
    forged = CertifiedTransactionEffects(effects_for(TransactionDigest(seed("tx", 2))), quorum)
    with pytest.raises(InvalidSignatureError):
        CertifiedTransactionEffects.from_bytes(forged.to_bytes()).verify(kc4.committee)


def test_certified_effects_of_another_epoch_fail(kc4: KeyedCommittee) -> None:
    """Effects executed in epoch E+1, signed in epoch E: refused before any signature."""
    effects = effects_for(TransactionDigest(seed("tx", 3)), epoch=EPOCH + 1)
    signed = [sign_batch(kc4, i, [effects.to_bytes()]) for i in range(4)]
    cert = CertifiedTransactionEffects(
        effects, certify(kc4, signed, [0, 1, 2], message=effects.to_bytes())
    )
    with pytest.raises(WrongEpochError):
        cert.verify(kc4.committee)


def test_a_batch_certificate_has_one_valid_encoding(kc4: KeyedCommittee) -> None:
    signed = [sign_batch(kc4, i, [MESSAGE, seed("m", i), seed("n", i)]) for i in range(4)]
    cert = certify(kc4, signed, [0, 1, 2])
    first = cert.signatures[0]
    assert first.proof.index == 0 and first.proof.count == 3
    # Re-encoded with another count, or another position, or both: never valid.
    for index, count in [(0, 4), (0, 2), (1, 3), (2, 3), (1, 4), (0, 5)]:
        proof = MerkleProof(index, count, first.proof.siblings)
        recounted = dataclasses.replace(first, proof=proof)
        other = dataclasses.replace(cert, signatures=(recounted, *cert.signatures[1:]))
        assert other.to_bytes() != cert.to_bytes()
        with pytest.raises((InvalidSignatureError, InvalidQuorumSignatureError)):
            other.verify(kc4.committee, INTENT, MESSAGE)
