"""Objects: references, owners, coins, digests and derived IDs."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma.types.base import ObjectID
from soma.types.bcs import U64, encode
from soma.types.digests import ObjectDigest, TransactionDigest
from soma.types.error import BcsDecodeError, InvalidValueError
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.object import (
    GENESIS_VERSION,
    AddressOwner,
    CoinData,
    Immutable,
    Object,
    ObjectRef,
    ObjectType,
    Owner,
    Shared,
)
from soma.types.system_state import SystemState, ValidatorSet
from tests.types.conftest import address, tx_digest

OID = ObjectID.from_int(42)


def coin(balance: int = 100, **changes: Any) -> Object:
    obj = Object.new_coin(OID, balance, AddressOwner(address(0)), tx_digest(0))
    return obj.with_changes(**changes) if changes else obj


# --- references and owners -------------------------------------------------------------------


def test_object_ref_layout_and_str() -> None:
    ref = ObjectRef(OID, 7, ObjectDigest(bytes(range(32))))
    assert ref.to_bytes() == bytes(OID) + (7).to_bytes(8, "little") + bytes(range(32))
    assert ObjectRef.from_bytes(ref.to_bytes()) == ref
    assert str(ref) == f"{OID}@7#{ref.digest}"


def test_object_ref_equality_is_by_all_three_fields() -> None:
    d = ObjectDigest(bytes(32))
    assert ObjectRef(OID, 1, d) == ObjectRef(OID, 1, d)
    assert ObjectRef(OID, 1, d) != ObjectRef(OID, 2, d)
    assert ObjectRef(OID, 1, d) != ObjectRef(ObjectID.from_int(43), 1, d)
    assert ObjectRef(OID, 1, d) != ObjectRef(OID, 1, ObjectDigest(b"\x01" * 32))
    assert len({ObjectRef(OID, 1, d), ObjectRef(OID, 1, d)}) == 1


@pytest.mark.parametrize(
    ("owner", "wire"),
    [
        (AddressOwner(address(3)), b"\x00" + bytes(address(3))),
        (Shared(9), b"\x01" + encode(9, U64)),
        (Immutable(), b"\x02"),
    ],
    ids=["address", "shared", "immutable"],
)
def test_owner_variants(owner: Owner, wire: bytes) -> None:
    assert owner.to_bytes() == wire
    back = Owner.from_bytes(wire)
    assert back == owner
    assert type(back) is type(owner)
    assert isinstance(back, Owner)


def test_owner_variants_are_distinct() -> None:
    assert AddressOwner(address(0)) != AddressOwner(address(1))
    assert Shared(1) != Shared(2)
    assert Immutable() == Immutable()
    assert Shared(1) != Immutable()


def test_unknown_owner_tag_is_rejected() -> None:
    with pytest.raises(BcsDecodeError):
        Owner.from_bytes(b"\x03")


def test_owner_address() -> None:
    assert coin().owner_address() == address(0)
    assert coin(owner=Shared(1)).owner_address() is None
    assert coin(owner=Immutable()).owner_address() is None


# --- coins and other types ----------------------------------------------------------------------


@given(st.integers(0, 2**64 - 1))
def test_new_coin_balance(balance: int) -> None:
    obj = Object.new_coin(OID, balance, AddressOwner(address(0)), tx_digest(0))
    assert obj.is_coin()
    assert obj.object_type is ObjectType.COIN
    assert obj.coin_balance() == balance
    assert obj.contents == encode(balance, U64)
    assert obj.version == GENESIS_VERSION
    assert Object.from_bytes(obj.to_bytes()).coin_balance() == balance


def test_new_coin_version_and_owner() -> None:
    obj = Object.new_coin(OID, 5, Shared(3), tx_digest(1), version=9)
    assert obj.version == 9
    assert obj.owner == Shared(3)
    assert obj.previous_transaction == tx_digest(1)
    assert obj.id == OID


def _system_state_contents() -> bytes:
    validators = ValidatorSet(active=(), pending_active=(), pending_removals=())
    return SystemState(0, 1, validators, DEFAULT_PARAMETERS, 0).to_bytes()


def test_coin_balance_on_non_coin_raises() -> None:
    state = coin(object_type=ObjectType.SYSTEM_STATE, contents=_system_state_contents())
    assert not state.is_coin()
    with pytest.raises(InvalidValueError):
        state.coin_balance()
    # A type whose contents are not that type's value cannot even be built.
    with pytest.raises(InvalidValueError):
        coin(object_type=ObjectType.SYSTEM_STATE)


def test_the_retired_stake_receipt_type_is_refused() -> None:
    """Tag 2 was a stake receipt: stake now lives in the system state, and bytes naming
    the old type do not decode (the tag is never reused)."""
    assert [t.value for t in ObjectType] == [0, 1]
    raw = bytearray(coin().to_bytes())
    assert raw[32] == ObjectType.COIN  # the type tag follows the 32-byte ID
    raw[32] = 2
    with pytest.raises(BcsDecodeError):
        Object.from_bytes(bytes(raw))


def test_with_coin_balance() -> None:
    original = coin(100)
    before = original.digest()
    changed = original.with_coin_balance(250)
    assert changed.coin_balance() == 250
    assert original.coin_balance() == 100
    assert original.digest() == before
    assert changed.digest() != before
    assert (changed.id, changed.version, changed.owner) == (
        original.id,
        original.version,
        original.owner,
    )
    assert changed.with_coin_balance(100).digest() == before


@pytest.mark.parametrize(
    "contents", [b"\x01\x02", encode(5, U64) + b"\x00", b""], ids=["short", "trailing", "empty"]
)
def test_malformed_contents_are_rejected(contents: bytes) -> None:
    """Contents must be exactly one canonical value of the object's type: such an object
    is never built, and never decoded from a peer's bytes."""
    with pytest.raises(InvalidValueError):
        coin(contents=contents)
    raw = coin().to_bytes()
    good = encode(100, U64)
    start = raw.index(bytes([len(good)]) + good)
    tampered = raw[:start] + bytes([len(contents)]) + contents + raw[start + 1 + len(good) :]
    with pytest.raises(BcsDecodeError):
        Object.from_bytes(tampered)


def test_typed_contents_are_decoded_once() -> None:
    obj = coin()
    assert obj.data() is obj.data()
    assert obj.data() == CoinData(100)


# --- digests ---------------------------------------------------------------------------------


def test_object_digest_is_tagged_blake2b() -> None:
    obj = coin()
    expected = hashlib.blake2b(b"Object::" + obj.to_bytes(), digest_size=32).digest()
    assert obj.digest() == expected
    assert isinstance(obj.digest(), ObjectDigest)
    assert obj.reference() == ObjectRef(obj.id, obj.version, obj.digest())
    assert Object.from_bytes(obj.to_bytes()).digest() == obj.digest()
    assert coin().digest() == obj.digest()


# Each field's alternative value (the type changes together with contents of that type).
OBJECT_ALTERNATIVES: dict[str, dict[str, Any]] = {
    "id": {"id": ObjectID.from_int(43)},
    "object_type": {
        "object_type": ObjectType.SYSTEM_STATE,
        "contents": _system_state_contents(),
    },
    "version": {"version": GENESIS_VERSION + 1},
    "contents": {"contents": encode(101, U64)},
    "owner": {"owner": Shared(1)},
    "previous_transaction": {"previous_transaction": tx_digest(1)},
}


def test_alternatives_cover_every_field() -> None:
    assert set(OBJECT_ALTERNATIVES) == {f.name for f in dataclasses.fields(Object)}


@pytest.mark.parametrize("field", sorted(OBJECT_ALTERNATIVES))
def test_object_digest_changes_with_every_field(field: str) -> None:
    base = coin()
    base.digest()  # cache it: a changed copy must not reuse it
    changed = base.with_changes(**OBJECT_ALTERNATIVES[field])
    assert changed.digest() != base.digest()
    assert changed.reference() != base.reference()


# --- derived IDs ------------------------------------------------------------------------------


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1))
def test_derive_is_deterministic_and_documented(raw: bytes, index: int) -> None:
    digest = TransactionDigest(raw)
    derived = ObjectID.derive(digest, index)
    assert derived == ObjectID.derive(TransactionDigest(raw), index)
    assert isinstance(derived, ObjectID)
    expected = hashlib.blake2b(
        b"ObjectID::" + raw + index.to_bytes(8, "little"), digest_size=32
    ).digest()
    assert derived == expected


@given(
    st.binary(min_size=32, max_size=32),
    st.lists(st.integers(0, 2**64 - 1), min_size=2, max_size=10, unique=True),
)
def test_derive_is_distinct_for_distinct_indices(raw: bytes, indices: list[int]) -> None:
    digest = TransactionDigest(raw)
    ids = {ObjectID.derive(digest, i) for i in indices}
    assert len(ids) == len(indices)


def test_derive_is_distinct_for_distinct_transactions() -> None:
    ids = {ObjectID.derive(tx_digest(t), i) for t in range(20) for i in range(20)}
    assert len(ids) == 400


@given(balance=st.integers(0, 2**64 - 1), version=st.integers(2, 2**63 - 1))
def test_with_version_equals_with_changes(balance: int, version: int) -> None:
    obj = coin(balance)
    obj.digest()  # a cached digest must not leak into the copy
    fast = obj.with_version(version, tx_digest(5))
    slow = obj.with_changes(version=version, previous_transaction=tx_digest(5))
    assert fast == slow
    assert fast.to_bytes() == slow.to_bytes() and fast.digest() == slow.digest()
    assert fast.coin_balance() == balance
    assert obj.version != version and obj.previous_transaction == tx_digest(0)
