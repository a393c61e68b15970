"""Objects: the unit of state. Every coin and the system state is an object with an ID,
a version that grows with each write, an owner, and the digest of the transaction that
last wrote it.

An object is identified at one version by its `ObjectRef` (id, version, digest); a
transaction names the exact refs it consumes, which is how a validator detects that a
coin was already spent.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import typing
from typing import Self

from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsEnum, BcsStruct, u64
from soma.types.digests import Hashed, ObjectDigest, TransactionDigest
from soma.types.error import BcsEncodeError, InvalidValueError, SomaError

#: Objects created at genesis have this version; every write moves past it (Lamport).
GENESIS_VERSION = 1


class ObjectRef(BcsStruct):
    object_id: ObjectID
    version: u64
    digest: ObjectDigest

    def __str__(self) -> str:
        return f"{self.object_id}@{self.version}#{self.digest}"

    def to_bytes(self) -> bytes:
        """The BCS encoding, packed directly: its layout is fixed (32-byte id, u64
        version, 32-byte digest) and a validator encodes several refs per transaction
        (store keys, accumulator elements), where the generic encoder costs 1.5 µs."""
        object_id, digest = self.object_id, self.digest
        if type(object_id) is not ObjectID or type(digest) is not ObjectDigest:
            return super().to_bytes()
        try:
            return object_id + _REF_VERSION.pack(self.version) + digest
        except struct.error as e:
            raise BcsEncodeError(f"cannot encode ObjectRef: version {self.version!r}: {e}") from e


_REF_VERSION = struct.Struct("<Q")


class Owner(BcsEnum):
    """Who may use an object as a transaction input."""


class AddressOwner(Owner, tag=0):
    """Owned by one address: only that address's transactions may consume it."""

    address: SomaAddress


class Shared(Owner, tag=1):
    """Usable by anyone; consensus orders its users and assigns its versions."""

    initial_shared_version: u64


class Immutable(Owner, tag=2):
    """Frozen: readable by anyone, never written again."""


class ObjectType(enum.IntEnum):
    """What the object's contents encode. Wire tags: never renumber, never reuse (2 was
    a stake receipt, retired: stake is the validator's own, kept in the system state)."""

    COIN = 0
    SYSTEM_STATE = 1


class CoinData(BcsStruct):
    balance: u64


_DATA_ATTR = "_data"


def contents_type(object_type: ObjectType) -> type[BcsStruct]:
    """The struct an object's contents hold for its type."""
    if object_type == ObjectType.COIN:
        return CoinData
    # Imported here: the system state module builds on this one.
    from soma.types.system_state import SystemState

    return SystemState


class Object(Hashed[ObjectDigest]):
    """An object at one version. `contents` is the BCS of the type `object_type` names;
    the constructor decodes it (rejecting contents that are not exactly a canonical value
    of that type, so an object that cannot be read can never be stored or hashed) and
    keeps the typed value, so reading a balance decodes nothing."""

    DIGEST_TAG = "Object"
    DIGEST_TYPE = ObjectDigest

    id: ObjectID
    object_type: ObjectType
    version: u64
    contents: bytes
    owner: Owner
    previous_transaction: TransactionDigest

    def __post_init__(self) -> None:
        kind = contents_type(self.object_type)
        try:
            data = kind.from_bytes(self.contents)
        except SomaError as e:
            raise InvalidValueError(
                f"object {self.id}: contents are not a {self.object_type.name}: {e.message}"
            ) from None
        self.__dict__[_DATA_ATTR] = data

    def reference(self) -> ObjectRef:
        return ObjectRef(self.id, self.version, self.digest())

    def data(self) -> BcsStruct:
        """The decoded contents (a `CoinData` or a `SystemState`)."""
        return typing.cast(BcsStruct, self.__dict__[_DATA_ATTR])

    # --- typed contents ---------------------------------------------------------------

    @classmethod
    def new_coin(
        cls,
        object_id: ObjectID,
        balance: int,
        owner: Owner,
        previous_transaction: TransactionDigest,
        version: int = GENESIS_VERSION,
    ) -> Self:
        return cls._coin(object_id, version, CoinData(balance), owner, previous_transaction)

    @classmethod
    def _coin(
        cls,
        object_id: ObjectID,
        version: int,
        data: CoinData,
        owner: Owner,
        previous_transaction: TransactionDigest,
    ) -> Self:
        """A coin built from its typed contents: they are encoded here, so the
        constructor's decode-and-check of the contents is skipped (execution makes two
        or three coins per transfer)."""
        new = object.__new__(cls)
        new.__dict__.update(
            {
                "id": object_id,
                "object_type": ObjectType.COIN,
                "version": version,
                "contents": data.to_bytes(),
                "owner": owner,
                "previous_transaction": previous_transaction,
                _DATA_ATTR: data,
            }
        )
        return new

    def is_coin(self) -> bool:
        return self.object_type == ObjectType.COIN

    def coin_balance(self) -> int:
        return self._coin_data().balance

    def _coin_data(self) -> CoinData:
        data = self.data()
        if not isinstance(data, CoinData):
            raise InvalidValueError(f"object {self.id} is a {self.object_type.name}, not a coin")
        return data

    def owner_address(self) -> SomaAddress | None:
        return self.owner.address if isinstance(self.owner, AddressOwner) else None

    def with_changes(self, **changes: object) -> Self:
        """A copy with some fields replaced (cached bytes and digest are not carried
        over: they belong to the old value)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_version(self, version: int, previous_transaction: TransactionDigest) -> Self:
        """This object as written by a transaction: same contents and owner at a new
        version. Execution's hot path: the contents were checked when this value was
        made, so they are not decoded again (`with_changes` would)."""
        new = object.__new__(type(self))
        target = new.__dict__
        source = self.__dict__
        for name in _OBJECT_FIELDS:
            target[name] = source[name]
        target["version"] = version
        target["previous_transaction"] = previous_transaction
        target[_DATA_ATTR] = source[_DATA_ATTR]
        return new

    def with_coin_balance(self, balance: int) -> Self:
        self._coin_data()
        return self._coin(
            self.id, self.version, CoinData(balance), self.owner, self.previous_transaction
        )


_OBJECT_FIELDS = tuple(f.name for f in dataclasses.fields(Object))
