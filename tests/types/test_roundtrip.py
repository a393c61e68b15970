"""from_bytes(to_bytes(x)) == x for every public type in soma.types."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soma.types import bcs
from soma.types.bcs import BcsStruct, IntEnumCodec
from soma.types.effects import TransactionEffects
from soma.types.envelope import Envelope
from soma.types.intent import IntentMessage
from soma.types.signature_info import AuthoritySignInfo
from tests.types.strategies import public_types, strategy_for

PUBLIC_TYPES = public_types()


def test_enumeration_finds_the_public_types() -> None:
    """Guard against the discovery silently finding nothing."""
    names = {t.__name__ for t in PUBLIC_TYPES}
    expected = {
        "TransactionDigest",
        "TransactionEffectsDigest",
        "ObjectDigest",
        "BlockDigest",
        "CommitDigest",
        "SomaAddress",
        "ObjectID",
        "AuthorityName",
        "Ed25519PublicKey",
        "Ed25519Signature",
        "UserSignature",
        "Intent",
        "IntentScope",
        "Committee",
        "CommitteeMember",
        "AuthoritySignInfo",
        "AuthorityQuorumSignInfo",
        "Ed25519QuorumSignInfo",
        "EmptySignInfo",
        "ObjectRef",
        "Owner",
        "AddressOwner",
        "Shared",
        "Immutable",
        "Object",
        "CoinData",
        "SystemState",
        "ValidatorSet",
        "TransactionKind",
        "TransferCoin",
        "PayCoins",
        "MergeCoins",
        "SplitCoin",
        "TransferObjects",
        "AddValidator",
        "RemoveValidator",
        "AddStake",
        "WithdrawStake",
        "GenesisTransaction",
        "ConsensusCommitPrologue",
        "ChangeEpoch",
        "TransactionData",
        "SignedTransaction",
        "TransactionEffects",
        "ExecutionStatus",
        "SignedTransactionEffects",
        "CertifiedTransactionEffects",
    }
    assert expected <= names, expected - names


def _roundtrip(tp: type, value: Any) -> None:
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        codec = IntEnumCodec(tp)
        assert bcs.decode(bcs.encode(value, codec), codec) is value
        return
    data = value.to_bytes() if isinstance(value, BcsStruct) else bcs.encode(value, tp.bcs_codec())  # type: ignore[attr-defined]
    decoded = tp.from_bytes(data) if issubclass(tp, BcsStruct) else bcs.decode(data, tp.bcs_codec())  # type: ignore[attr-defined]
    assert decoded == value
    assert type(decoded) is type(value)
    # Canonical: re-encoding the decoded value gives the same bytes.
    again = (
        decoded.to_bytes()
        if isinstance(decoded, BcsStruct)
        else bcs.encode(decoded, tp.bcs_codec())
    )  # type: ignore[attr-defined]
    assert again == data


@pytest.mark.parametrize("tp", PUBLIC_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip(tp: type, data: st.DataObject) -> None:
    value = data.draw(strategy_for(tp))
    _roundtrip(tp, value)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_generic_envelope_roundtrip(data: st.DataObject) -> None:
    """Generic structs used with explicit parameters encode like their subclasses."""
    alias = Envelope[TransactionEffects, AuthoritySignInfo]
    codec = bcs.codec_for(alias)
    value = data.draw(strategy_for(alias))
    assert bcs.decode(bcs.encode(value, codec), codec) == value


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_intent_message_roundtrip(data: st.DataObject) -> None:
    codec = bcs.codec_for(IntentMessage[bytes])
    value = data.draw(strategy_for(IntentMessage[bytes]))
    encoded = bcs.encode(value, codec)
    assert bcs.decode(encoded, codec) == value
    # The intent prefix is exactly the three intent bytes.
    assert encoded[:3] == value.intent.to_bytes()
