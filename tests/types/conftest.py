"""Shared builders for the type tests: deterministic keys, committees, objects.

Keys are derived from a label and an index, so every run (and every test) sees the same
authorities; committees are cached by their stakes, since building one costs a few key
derivations and tests ask for the same shapes again and again.

The helpers are plain functions (importable as `tests.types.conftest`) so that
hypothesis tests can use them without function-scoped fixtures; `committee_factory`
exposes the main one as a fixture too.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Sequence

import pytest

from soma.types.base import ObjectID, SomaAddress
from soma.types.committee import Committee, CommitteeMember
from soma.types.crypto import AccountKeyPair, AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.digests import ObjectDigest, TransactionDigest
from soma.types.intent import Intent
from soma.types.object import ObjectRef
from soma.types.signature_info import AuthoritySignInfo, Ed25519QuorumSignInfo
from soma.types.tls import tls_identity


def seed(label: str, index: int) -> bytes:
    """A 32-byte seed unique to (label, index)."""
    return hashlib.blake2b(f"{label}/{index}".encode(), digest_size=32).digest()


@functools.cache
def authority_key(index: int) -> AuthorityKeyPair:
    return AuthorityKeyPair(seed("authority", index))


@functools.cache
def account_key(index: int) -> AccountKeyPair:
    return AccountKeyPair(seed("account", index))


def make_member(key: AuthorityKeyPair, stake: int, label: int = 0) -> CommitteeMember:
    return CommitteeMember(
        name=key.name,
        stake=stake,
        protocol_key=ProtocolKeyPair(seed("protocol", label)).public_key,
        network_key=NetworkKeyPair(seed("network", label)).public_key,
        tls_certificate=tls_identity(NetworkKeyPair(seed("network", label))).certificate_der,
        hostname=f"validator-{label}",
        network_address=f"127.0.0.1:{9000 + label}",
        consensus_address=f"127.0.0.1:{10000 + label}",
        p2p_address=f"127.0.0.1:{11000 + label}",
    )


@dataclasses.dataclass(frozen=True)
class KeyedCommittee:
    """A committee and its members' authority keys; `keys[i]` signs for member `i`."""

    committee: Committee
    keys: tuple[AuthorityKeyPair, ...]

    @property
    def epoch(self) -> int:
        return self.committee.epoch

    def sign(
        self, index: int, intent: Intent, data: bytes, epoch: int | None = None
    ) -> AuthoritySignInfo:
        return AuthoritySignInfo.create(
            self.keys[index], self.epoch if epoch is None else epoch, intent, data
        )

    def certify(self, indices: Sequence[int], intent: Intent, data: bytes) -> Ed25519QuorumSignInfo:
        return Ed25519QuorumSignInfo.from_signatures(
            self.committee, [self.sign(i, intent, data) for i in indices]
        )


@functools.cache
def _build_committee(stakes: tuple[int, ...], epoch: int, key_offset: int) -> KeyedCommittee:
    keys = sorted((authority_key(key_offset + i) for i in range(len(stakes))), key=lambda k: k.name)
    members = [
        make_member(k, s, key_offset + i) for i, (k, s) in enumerate(zip(keys, stakes, strict=True))
    ]
    committee = Committee.new(epoch, members)
    assert [m.name for m in committee.members] == [k.name for k in keys]
    return KeyedCommittee(committee, tuple(keys))


def build_committee(stakes: Sequence[int], epoch: int = 0, key_offset: int = 0) -> KeyedCommittee:
    """A committee whose member `i` (in name order) has stake `stakes[i]`.

    `key_offset` picks a disjoint set of authority keys, for "a key not in the committee".
    """
    return _build_committee(tuple(stakes), epoch, key_offset)


def object_ref(n: int, version: int = 1) -> ObjectRef:
    """An owned-object reference with ID `n` and a digest derived from (n, version)."""
    return ObjectRef(ObjectID.from_int(n), version, ObjectDigest(seed(f"object@{version}", n)))


def tx_digest(n: int) -> TransactionDigest:
    return TransactionDigest(seed("tx", n))


def address(n: int) -> SomaAddress:
    return SomaAddress(seed("address", n))


@pytest.fixture(scope="session")
def committee_factory() -> Callable[..., KeyedCommittee]:
    return build_committee
