"""The committee of one epoch: who the validators are and how much each one's vote weighs.

Members are kept sorted by authority name, so the index of a member (used in signer
bitmaps and consensus block authorship) is the same on every node that knows the same
set. Thresholds follow the usual BFT arithmetic for any total stake T:

* quorum   = floor(2T/3) + 1 : two quorums always share an honest member;
* validity = floor((T+2)/3)  : at least one member of any validity set is honest.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Generic, TypeVar

from soma.types.base import AuthorityName
from soma.types.bcs import BcsStruct, u64
from soma.types.crypto import Ed25519PublicKey
from soma.types.error import CommitteeError, UnknownAuthorityError
from soma.types.weighted_shuffle import weighted_shuffle

U64_MAX = (1 << 64) - 1


def quorum_threshold(total_stake: int) -> int:
    return 2 * total_stake // 3 + 1


def validity_threshold(total_stake: int) -> int:
    return (total_stake + 2) // 3


class CommitteeMember(BcsStruct):
    """One validator as the committee knows it: identity, weight, keys and addresses."""

    name: AuthorityName
    stake: u64
    protocol_key: Ed25519PublicKey
    network_key: Ed25519PublicKey
    #: DER certificate of the node's TLS key, bound to `network_key` (soma.types.tls):
    #: the certificate peers pin on this member's links.
    tls_certificate: bytes
    hostname: str
    network_address: str
    consensus_address: str
    p2p_address: str


class Committee(BcsStruct):
    epoch: u64
    members: tuple[CommitteeMember, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise CommitteeError("a committee needs at least one member")
        names = [m.name for m in self.members]
        if any(a >= b for a, b in itertools.pairwise(names)):
            raise CommitteeError("committee members must be sorted by name and unique")
        if any(m.stake == 0 for m in self.members):
            raise CommitteeError("every committee member needs a positive stake")
        # Peers are told apart by their keys; two members sharing one would be ambiguous.
        for role in ("protocol_key", "network_key"):
            if len({getattr(m, role) for m in self.members}) != len(self.members):
                raise CommitteeError(f"two committee members share a {role.replace('_', ' ')}")
        if sum(m.stake for m in self.members) > U64_MAX:
            raise CommitteeError("total committee stake overflows u64")

    @classmethod
    def new(cls, epoch: int, members: Iterable[CommitteeMember]) -> Committee:
        """Build a committee from members in any order (they are sorted by name)."""
        return cls(epoch, tuple(sorted(members, key=lambda m: m.name)))

    # Derived views are cached: the committee is immutable and consulted on hot paths.

    @cached_property
    def _index(self) -> dict[AuthorityName, int]:
        return {m.name: i for i, m in enumerate(self.members)}

    @cached_property
    def total_stake(self) -> int:
        return sum(m.stake for m in self.members)

    @cached_property
    def quorum_threshold(self) -> int:
        return quorum_threshold(self.total_stake)

    @cached_property
    def validity_threshold(self) -> int:
        return validity_threshold(self.total_stake)

    @property
    def size(self) -> int:
        return len(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[CommitteeMember]:
        return iter(self.members)

    def names(self) -> list[AuthorityName]:
        return [m.name for m in self.members]

    def is_member(self, name: AuthorityName) -> bool:
        return name in self._index

    def index_of(self, name: AuthorityName) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise UnknownAuthorityError(
                f"{name} is not in the committee of epoch {self.epoch}"
            ) from None

    def member(self, index: int) -> CommitteeMember:
        if not 0 <= index < len(self.members):
            raise UnknownAuthorityError(
                f"authority index {index} is outside the committee of {len(self.members)}"
            )
        return self.members[index]

    def stake_of(self, authority: int | AuthorityName) -> int:
        if isinstance(authority, int):
            return self.member(authority).stake
        return self.members[self.index_of(authority)].stake

    def shuffle_by_stake(self, rng: random.Random) -> list[int]:
        """Member indices in a random order where heavier members tend to come first, so
        a client asks the validators most likely to matter before the rest."""
        return weighted_shuffle({i: m.stake for i, m in enumerate(self.members)}, rng)


V = TypeVar("V")


class StakeAggregator(Generic[V]):
    """Collects one value per authority and tracks the stake behind them.

    A second value from the same authority is ignored (the first one counts), so an
    equivocating or retrying authority cannot count twice.
    """

    __slots__ = ("_committee", "_threshold", "_total", "_values")

    def __init__(self, committee: Committee, threshold: int | None = None) -> None:
        self._committee = committee
        self._threshold = committee.quorum_threshold if threshold is None else threshold
        if self._threshold < 1:
            raise CommitteeError(f"a stake threshold must be positive, got {self._threshold}")
        self._values: dict[int, V] = {}
        self._total = 0

    @classmethod
    def validity(cls, committee: Committee) -> StakeAggregator[V]:
        return cls(committee, committee.validity_threshold)

    def add(self, authority: int | AuthorityName, value: V) -> bool:
        """Record `value` from `authority`; return whether the threshold is reached."""
        index = authority if isinstance(authority, int) else self._committee.index_of(authority)
        stake = self._committee.stake_of(index)
        if index not in self._values:
            self._values[index] = value
            self._total += stake
        return self._total >= self._threshold

    def contains(self, authority: int | AuthorityName) -> bool:
        index = authority if isinstance(authority, int) else self._committee.index_of(authority)
        return index in self._values

    @property
    def reached(self) -> bool:
        return self._total >= self._threshold

    @property
    def total_stake(self) -> int:
        return self._total

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def values(self) -> dict[int, V]:
        """Authority index -> the value it contributed."""
        return dict(self._values)

    def clear(self) -> None:
        self._values.clear()
        self._total = 0
