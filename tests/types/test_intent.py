"""Intents: "a signature made for one intent scope never verifies under another".

Checked for every pair of distinct scopes, for the other application domain, and for
other bytes, at each of the three places a signature is checked: user signatures,
single-authority signatures and quorum certificates.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types.bcs import BYTES, codec_for, encode
from soma.types.crypto import UserSignature
from soma.types.digests import blake2b256
from soma.types.error import InvalidSignatureError
from soma.types.intent import (
    AppId,
    Intent,
    IntentMessage,
    IntentScope,
    IntentVersion,
    intent_message_digest,
)
from soma.types.signature_info import authority_signing_digest
from tests.types.conftest import account_key, build_committee

SCOPES = list(IntentScope)
APPS = list(AppId)
#: Every intent that exists today (one version only).
ALL_INTENTS = [Intent(s, v, a) for s in SCOPES for v in IntentVersion for a in APPS]
SCOPE_PAIRS = list(itertools.permutations(SCOPES, 2))

VALUE = b"\x01\x02the canonical bytes of some value"


def intent_id(intent: Intent) -> str:
    return f"{intent.scope.name}/{intent.app_id.name}"


# --- the intent bytes themselves ----------------------------------------------------------


def test_scope_tags_are_the_wire_values() -> None:
    assert [int(s) for s in SCOPES] == list(range(10))
    assert IntentScope.SIGNED_BATCH == 9
    assert IntentScope.TRANSACTION_DATA == 0
    assert IntentScope.TRANSACTION_EFFECTS == 1
    assert IntentScope.CONSENSUS_BLOCK == 6
    assert AppId.SOMA == 0
    assert AppId.CONSENSUS == 1
    assert IntentVersion.V0 == 0


@pytest.mark.parametrize("intent", ALL_INTENTS, ids=intent_id)
def test_intent_bytes_are_scope_version_app(intent: Intent) -> None:
    assert intent.to_bytes() == bytes([intent.scope, intent.version, intent.app_id])
    assert Intent.from_bytes(intent.to_bytes()) == intent


def test_intent_constructors() -> None:
    for scope in SCOPES:
        assert Intent.soma(scope) == Intent(scope, IntentVersion.V0, AppId.SOMA)
        assert Intent.consensus(scope) == Intent(scope, IntentVersion.V0, AppId.CONSENSUS)


def test_every_intent_gives_a_different_digest() -> None:
    digests = {intent_message_digest(i, VALUE) for i in ALL_INTENTS}
    assert len(digests) == len(ALL_INTENTS)


@settings(max_examples=50, deadline=None)
@given(scope=st.sampled_from(SCOPES), app=st.sampled_from(APPS), value=st.binary(max_size=300))
def test_intent_message_digest_is_the_hash_of_the_intent_message(
    scope: IntentScope, app: AppId, value: bytes
) -> None:
    intent = Intent(scope, IntentVersion.V0, app)
    value_bcs = encode(value, BYTES)
    message_bytes = encode(IntentMessage(intent, value), codec_for(IntentMessage[bytes]))
    assert message_bytes == intent.to_bytes() + value_bcs
    assert intent_message_digest(intent, value_bcs) == blake2b256(message_bytes)
    assert blake2b256(message_bytes) == hashlib.blake2b(message_bytes, digest_size=32).digest()


# --- user signatures ------------------------------------------------------------------------


@pytest.mark.parametrize("intent", ALL_INTENTS, ids=intent_id)
def test_user_signature_verifies_under_its_own_intent(intent: Intent) -> None:
    key = account_key(0)
    sig = UserSignature.create(key, intent, VALUE)
    assert sig.verify(intent, VALUE) == key.address


def accepted_under(check: Callable[[Intent], None], signed_as: Intent) -> list[str]:
    """The intents other than `signed_as` under which `check` does NOT raise
    InvalidSignatureError (should be none)."""
    wrong = []
    for other in ALL_INTENTS:
        if other == signed_as:
            continue
        try:
            check(other)
        except InvalidSignatureError:
            continue
        wrong.append(intent_id(other))
    return wrong


@pytest.mark.parametrize("signed_as", ALL_INTENTS, ids=intent_id)
def test_user_signature_never_verifies_under_another_intent(signed_as: Intent) -> None:
    sig = UserSignature.create(account_key(0), signed_as, VALUE)
    assert len(ALL_INTENTS) == len(SCOPES) * len(APPS) == 20
    assert accepted_under(lambda i: sig.verify(i, VALUE), signed_as) == []


@settings(max_examples=40, deadline=None)
@given(
    intent=st.sampled_from(ALL_INTENTS),
    value=st.binary(max_size=100),
    other=st.binary(max_size=100),
)
def test_user_signature_never_verifies_for_other_bytes(
    intent: Intent, value: bytes, other: bytes
) -> None:
    sig = UserSignature.create(account_key(1), intent, value)
    assert sig.verify(intent, value) == account_key(1).address
    if other != value:
        with pytest.raises(InvalidSignatureError):
            sig.verify(intent, other)


# --- authority signatures -------------------------------------------------------------------


@pytest.mark.parametrize("signed_as", ALL_INTENTS, ids=intent_id)
def test_authority_signature_never_verifies_under_another_intent(signed_as: Intent) -> None:
    kc = build_committee([1, 1, 1, 1])
    info = kc.sign(0, signed_as, VALUE)
    info.verify(kc.committee, signed_as, VALUE)
    assert accepted_under(lambda i: info.verify(kc.committee, i, VALUE), signed_as) == []


@settings(max_examples=30, deadline=None)
@given(
    intent=st.sampled_from(ALL_INTENTS),
    value=st.binary(max_size=100),
    other=st.binary(max_size=100),
    signer=st.integers(0, 3),
)
def test_authority_signature_never_verifies_for_other_bytes(
    intent: Intent, value: bytes, other: bytes, signer: int
) -> None:
    kc = build_committee([1, 1, 1, 1])
    info = kc.sign(signer, intent, value)
    info.verify(kc.committee, intent, value)
    if other != value:
        with pytest.raises(InvalidSignatureError):
            info.verify(kc.committee, intent, other)


def test_authority_signing_digest_covers_intent_data_and_epoch() -> None:
    intent = Intent.soma(IntentScope.TRANSACTION_EFFECTS)
    expected = hashlib.blake2b(
        intent.to_bytes() + VALUE + (7).to_bytes(8, "little"), digest_size=32
    ).digest()
    assert authority_signing_digest(intent, VALUE, 7) == expected
    assert authority_signing_digest(intent, VALUE, 8) != expected


def test_authority_and_user_signatures_over_the_same_intent_differ() -> None:
    """An authority signature commits to the epoch, so it is never a valid user-style
    signature over the same intent message (and vice versa)."""
    intent = Intent.soma(IntentScope.PERSONAL_MESSAGE)
    kc = build_committee([1, 1, 1, 1])
    info = kc.sign(0, intent, VALUE)
    with pytest.raises(InvalidSignatureError):
        kc.keys[0].public_key.verify(intent_message_digest(intent, VALUE), info.signature)


# --- quorum certificates --------------------------------------------------------------------


@pytest.mark.parametrize("pair", SCOPE_PAIRS, ids=lambda p: f"{p[0].name}->{p[1].name}")
def test_quorum_certificate_never_verifies_under_another_scope(
    pair: tuple[IntentScope, IntentScope],
) -> None:
    signed_as, checked_as = Intent.soma(pair[0]), Intent.soma(pair[1])
    kc = build_committee([1, 1, 1, 1])
    cert = kc.certify([0, 1, 2], signed_as, VALUE)
    cert.verify(kc.committee, signed_as, VALUE)
    with pytest.raises(InvalidSignatureError):
        cert.verify(kc.committee, checked_as, VALUE)


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: s.name)
def test_quorum_certificate_never_verifies_under_another_app(scope: IntentScope) -> None:
    kc = build_committee([1, 1, 1, 1])
    cert = kc.certify([1, 2, 3], Intent.soma(scope), VALUE)
    cert.verify(kc.committee, Intent.soma(scope), VALUE)
    with pytest.raises(InvalidSignatureError):
        cert.verify(kc.committee, Intent.consensus(scope), VALUE)
    cert2 = kc.certify([1, 2, 3], Intent.consensus(scope), VALUE)
    with pytest.raises(InvalidSignatureError):
        cert2.verify(kc.committee, Intent.soma(scope), VALUE)


def test_quorum_certificate_never_verifies_for_other_bytes() -> None:
    intent = Intent.soma(IntentScope.TRANSACTION_EFFECTS)
    kc = build_committee([1, 1, 1, 1])
    cert = kc.certify([0, 1, 2, 3], intent, VALUE)
    cert.verify(kc.committee, intent, VALUE)
    for other in (b"", VALUE[:-1], VALUE + b"\x00", b"\x00" + VALUE[1:]):
        with pytest.raises(InvalidSignatureError):
            cert.verify(kc.committee, intent, other)


def test_accepted_under_reports_every_intent_that_does_not_reject() -> None:
    """Guard for the helper above: a check that never raises is caught for all 17."""
    signed_as = ALL_INTENTS[0]
    assert len(accepted_under(lambda i: None, signed_as)) == len(ALL_INTENTS) - 1
