"""The state accumulator: an incremental, order-independent hash of the live object set.

Validators compare state by one 32-byte root, and a root must follow from the previous
one and a commit's effects alone (rehashing every object per commit would not scale).
That needs a homomorphic multiset hash: H(A + {x}) computed from H(A) and x, with the
same result in any order. We use LtHash (Bellare-Micciancio's additive hash as hardened
by Lewi et al., "Securing Update Propagation with Homomorphic Hashing", 2019):
an element maps to 1024 lanes of 16 bits (SHAKE-256 output), a set is the lane-wise
sum modulo 2^16, removal is lane-wise subtraction. It is about five times faster per
object in Python than an elliptic-curve multiset hash through libsodium, and its
security rests on a lattice problem (SIS) with comparable margin at this size.

Elements are object references (id, version, digest): an object written by a
transaction leaves the set at its old reference and enters at its new one, exactly what
the effects record, so a commit's delta is computed from its effects.

Lane arithmetic uses Python integers: the 2048 bytes are one integer, and even and odd
lanes are kept in separate integers with a zero lane between neighbours, so one integer
addition adds 512 lanes at once and masking drops the carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Self

from soma.types.digests import blake2b256
from soma.types.effects import ObjectInExist, ObjectOutWrite, TransactionEffects
from soma.types.error import InvalidValueError
from soma.types.object import ObjectRef

LANES = 1024
LANE_BITS = 16
STATE_BYTES = LANES * LANE_BITS // 8
_ELEMENT_TAG = b"soma::StateAccumulator::"
#: Elements summed before the sums are folded in (each side gets at most one per
#: change, so a 16-bit carry lane holds them: below 2^16).
_SUM_LIMIT = 60_000
_ROOT_TAG = b"soma::StateRoot::"


def _lane_mask(parity: int) -> int:
    mask = 0
    for lane in range(parity, LANES, 2):
        mask |= 0xFFFF << (LANE_BITS * lane)
    return mask


_EVEN = _lane_mask(0)
_ODD = _lane_mask(1)
_ONES_EVEN = sum(1 << (LANE_BITS * lane) for lane in range(0, LANES, 2))
_ONES_ODD = sum(1 << (LANE_BITS * lane) for lane in range(1, LANES, 2))


def _element(data: bytes) -> int:
    return int.from_bytes(hashlib.shake_256(_ELEMENT_TAG + data).digest(STATE_BYTES), "little")


class StateAccumulator:
    """A multiset of object references as 1024 16-bit lanes. Mutable; `copy` to fork."""

    __slots__ = ("_even", "_odd")

    def __init__(self, even: int = 0, odd: int = 0) -> None:
        self._even = even
        self._odd = odd

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) != STATE_BYTES:
            raise InvalidValueError(f"a state accumulator is {STATE_BYTES} bytes, got {len(data)}")
        value = int.from_bytes(data, "little")
        return cls(value & _EVEN, value & _ODD)

    def to_bytes(self) -> bytes:
        return (self._even | self._odd).to_bytes(STATE_BYTES, "little")

    def copy(self) -> StateAccumulator:
        return StateAccumulator(self._even, self._odd)

    def insert(self, ref: ObjectRef) -> None:
        self.insert_bytes(ref.to_bytes())

    def remove(self, ref: ObjectRef) -> None:
        self.remove_bytes(ref.to_bytes())

    def insert_bytes(self, data: bytes) -> None:
        x = _element(data)
        self._even = (self._even + (x & _EVEN)) & _EVEN
        self._odd = (self._odd + (x & _ODD)) & _ODD

    def remove_bytes(self, data: bytes) -> None:
        x = _element(data)
        # Lane-wise negation (2^16 - x), then addition: a plain subtraction would borrow
        # through the zero lanes between neighbours.
        self._even = (self._even + (((_EVEN - (x & _EVEN)) + _ONES_EVEN) & _EVEN)) & _EVEN
        self._odd = (self._odd + (((_ODD - (x & _ODD)) + _ONES_ODD) & _ODD)) & _ODD

    def union(self, other: StateAccumulator) -> None:
        """Add every element of `other` (a delta built the same way)."""
        self._even = (self._even + other._even) & _EVEN
        self._odd = (self._odd + other._odd) & _ODD

    def apply_effects(self, effects: TransactionEffects) -> None:
        """Move the objects a transaction changed from their old to their new refs."""
        for removed, inserted in effects_changes(effects):
            if removed is not None:
                self.remove(removed)
            if inserted is not None:
                self.insert(inserted)

    def apply_all(self, effects: Iterable[TransactionEffects]) -> None:
        """`apply_effects` for many transactions at once (a commit's): the elements are
        summed lane-wise first, with one negation and one masking at the end instead of
        one per element. Each lane's sum has the zero lane above it for carries, so up
        to `_SUM_LIMIT` elements add without overflowing into a neighbour."""
        plus_even = plus_odd = minus_even = minus_odd = 0
        count = 0
        for item in effects:
            for removed, inserted in effects_changes(item):
                if removed is not None:
                    x = _element(removed.to_bytes())
                    minus_even += x & _EVEN
                    minus_odd += x & _ODD
                if inserted is not None:
                    x = _element(inserted.to_bytes())
                    plus_even += x & _EVEN
                    plus_odd += x & _ODD
                count += 1
                if count >= _SUM_LIMIT:
                    self._add_sums(plus_even, plus_odd, minus_even, minus_odd)
                    plus_even = plus_odd = minus_even = minus_odd = 0
                    count = 0
        self._add_sums(plus_even, plus_odd, minus_even, minus_odd)

    def _add_sums(self, plus_even: int, plus_odd: int, minus_even: int, minus_odd: int) -> None:
        neg_even = ((_EVEN - (minus_even & _EVEN)) + _ONES_EVEN) & _EVEN
        neg_odd = ((_ODD - (minus_odd & _ODD)) + _ONES_ODD) & _ODD
        self._even = (self._even + (plus_even & _EVEN) + neg_even) & _EVEN
        self._odd = (self._odd + (plus_odd & _ODD) + neg_odd) & _ODD

    def root(self) -> bytes:
        """The 32-byte digest validators compare."""
        return blake2b256(_ROOT_TAG + self.to_bytes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateAccumulator):
            return NotImplemented
        return self._even == other._even and self._odd == other._odd

    def __hash__(self) -> int:
        return hash((self._even, self._odd))

    def __repr__(self) -> str:
        return f"StateAccumulator(root={self.root().hex()[:16]}...)"


def effects_changes(
    effects: TransactionEffects,
) -> Iterable[tuple[ObjectRef | None, ObjectRef | None]]:
    """(old ref, new ref) for every object the effects change (None: absent)."""
    lamport = effects.lamport_version
    for changed in effects.changed_objects:
        before = changed.change.input_state
        after = changed.change.output_state
        old = (
            ObjectRef(changed.object_id, before.version, before.digest)
            if isinstance(before, ObjectInExist)
            else None
        )
        new = (
            ObjectRef(changed.object_id, lamport, after.digest)
            if isinstance(after, ObjectOutWrite)
            else None
        )
        yield old, new


def accumulate(refs: Iterable[ObjectRef]) -> StateAccumulator:
    """The accumulator of a set of live objects, from scratch (for checks and tests)."""
    acc = StateAccumulator()
    for ref in refs:
        acc.insert(ref)
    return acc
