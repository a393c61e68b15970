"""Intents: what a signature is for.

Every signature in soma covers `Intent || BCS(value)` (an `IntentMessage`), never the
bare value, so a signature made for one purpose (a transaction) can never be replayed as
another (effects, a consensus block, a handshake): the scope byte differs, so the signed
digest differs.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Generic, TypeVar

from soma.types.bcs import BcsStruct
from soma.types.digests import DIGEST_LENGTH


class IntentScope(enum.IntEnum):
    """What kind of value is signed. Values are wire tags: never renumber."""

    TRANSACTION_DATA = 0
    TRANSACTION_EFFECTS = 1
    COMMIT_SUMMARY = 2
    PERSONAL_MESSAGE = 3
    SENDER_SIGNED_TRANSACTION = 4
    PROOF_OF_POSSESSION = 5
    CONSENSUS_BLOCK = 6
    DISCOVERY_PEERS = 7
    NETWORK_HANDSHAKE = 8
    #: A Merkle root over many messages (`soma.types.signature_batch`).
    SIGNED_BATCH = 9


class IntentVersion(enum.IntEnum):
    V0 = 0


class AppId(enum.IntEnum):
    """Which application domain the signature belongs to."""

    SOMA = 0
    CONSENSUS = 1


class Intent(BcsStruct):
    scope: IntentScope
    version: IntentVersion
    app_id: AppId

    @classmethod
    def soma(cls, scope: IntentScope) -> Intent:
        return cls(scope, IntentVersion.V0, AppId.SOMA)

    @classmethod
    def consensus(cls, scope: IntentScope) -> Intent:
        return cls(scope, IntentVersion.V0, AppId.CONSENSUS)


T = TypeVar("T")


class IntentMessage(BcsStruct, Generic[T]):
    """`Intent` followed by the value: the exact bytes whose Blake2b-256 gets signed.

    Hot paths use `intent_message_digest`, which hashes the same bytes from a value
    already encoded, instead of building this wrapper.
    """

    intent: Intent
    value: T


def intent_message_digest(intent: Intent, value_bcs: bytes | memoryview) -> bytes:
    """Blake2b-256(BCS(IntentMessage(intent, value))) from the value's BCS bytes (hashed
    in place: a view into a larger buffer is not copied)."""
    h = hashlib.blake2b(digest_size=DIGEST_LENGTH)
    h.update(intent.to_bytes())
    h.update(value_bcs)
    return h.digest()
