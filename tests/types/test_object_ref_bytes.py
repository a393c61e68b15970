"""`ObjectRef.to_bytes` packs its fixed layout directly; it must equal the generic BCS
encoding for every value, and fail the same typed way on an unencodable version."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma.types.base import ObjectID
from soma.types.bcs.codec import encode
from soma.types.digests import ObjectDigest
from soma.types.error import BcsEncodeError
from soma.types.object import ObjectRef

_BYTES32 = st.binary(min_size=32, max_size=32)


@given(_BYTES32, st.integers(0, 2**64 - 1), _BYTES32)
def test_packed_bytes_equal_the_generic_encoding(
    object_id: bytes, version: int, digest: bytes
) -> None:
    ref = ObjectRef(ObjectID(object_id), version, ObjectDigest(digest))
    data = ref.to_bytes()
    assert data == encode(ref, ObjectRef.bcs_codec())
    assert type(data) is bytes
    assert ObjectRef.from_bytes(data) == ref


@pytest.mark.parametrize("version", [-1, 2**64, "1"])
def test_an_unencodable_version_is_a_typed_error(version: object) -> None:
    ref = ObjectRef(ObjectID(bytes(32)), version, ObjectDigest(bytes(32)))  # type: ignore[arg-type]
    with pytest.raises(BcsEncodeError):
        ref.to_bytes()
