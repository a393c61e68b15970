"""Objects: the unit of state. Every coin, stake receipt and the system state is an
object with an ID, a version that grows with each write, an owner, and the digest of the
transaction that last wrote it.

An object is identified at one version by its `ObjectRef` (id, version, digest); a
transaction names the exact refs it consumes, which is how a validator detects that a
coin was already spent.
"""

from __future__ import annotations

import dataclasses
import enum
from functools import cached_property
from typing import Self

from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsEnum, BcsStruct, u64
from soma.types.digests import ObjectDigest, TransactionDigest, tagged_hash
from soma.types.error import InvalidValueError

#: Objects created at genesis have this version; every write moves past it (Lamport).
GENESIS_VERSION = 1
MAX_VERSION = (1 << 63) - 1


class ObjectRef(BcsStruct):
    object_id: ObjectID
    version: u64
    digest: ObjectDigest

    def __str__(self) -> str:
        return f"{self.object_id}@{self.version}#{self.digest}"


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
    """What the object's contents encode. Wire tags: never renumber."""

    COIN = 0
    SYSTEM_STATE = 1
    STAKED_SOMA = 2


class CoinData(BcsStruct):
    balance: u64


class StakedSomaData(BcsStruct):
    """A receipt for stake delegated to a validator; withdrawing it returns a coin."""

    validator: SomaAddress
    stake_activation_epoch: u64
    principal: u64


class Object(BcsStruct):
    id: ObjectID
    object_type: ObjectType
    version: u64
    contents: bytes
    owner: Owner
    previous_transaction: TransactionDigest

    @cached_property
    def _digest(self) -> ObjectDigest:
        return ObjectDigest(tagged_hash("Object", self.to_bytes()))

    def digest(self) -> ObjectDigest:
        return self._digest

    def reference(self) -> ObjectRef:
        return ObjectRef(self.id, self.version, self._digest)

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
        return cls(
            object_id,
            ObjectType.COIN,
            version,
            CoinData(balance).to_bytes(),
            owner,
            previous_transaction,
        )

    @classmethod
    def new_staked_soma(
        cls,
        object_id: ObjectID,
        data: StakedSomaData,
        owner: Owner,
        previous_transaction: TransactionDigest,
        version: int = GENESIS_VERSION,
    ) -> Self:
        return cls(
            object_id, ObjectType.STAKED_SOMA, version, data.to_bytes(), owner, previous_transaction
        )

    def is_coin(self) -> bool:
        return self.object_type == ObjectType.COIN

    def coin_balance(self) -> int:
        if self.object_type != ObjectType.COIN:
            raise InvalidValueError(f"object {self.id} is a {self.object_type.name}, not a coin")
        return CoinData.from_bytes(self.contents).balance

    def staked_soma(self) -> StakedSomaData:
        if self.object_type != ObjectType.STAKED_SOMA:
            raise InvalidValueError(
                f"object {self.id} is a {self.object_type.name}, not a stake receipt"
            )
        return StakedSomaData.from_bytes(self.contents)

    def owner_address(self) -> SomaAddress | None:
        return self.owner.address if isinstance(self.owner, AddressOwner) else None

    def with_changes(self, **changes: object) -> Self:
        """A copy with some fields replaced (the cached digest is not carried over)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_coin_balance(self, balance: int) -> Self:
        return self.with_changes(contents=CoinData(balance).to_bytes())
