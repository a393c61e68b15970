"""Envelopes (unsigned, signed, certified) and transaction effects."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from soma.types.base import ObjectID
from soma.types.digests import ObjectDigest, TransactionEffectsDigest
from soma.types.effects import (
    CertifiedTransactionEffects,
    ChangedObject,
    EffectsObjectChange,
    ExecutionFailure,
    ExecutionSuccess,
    IDOperation,
    InsufficientGas,
    ObjectInExist,
    ObjectInNotExist,
    ObjectOutNotExist,
    ObjectOutWrite,
    SignedTransactionEffects,
    TransactionEffects,
)
from soma.types.envelope import UnsignedEnvelope
from soma.types.error import (
    InsufficientStakeError,
    InvalidQuorumSignatureError,
    InvalidSignatureError,
    InvalidValueError,
    UnknownAuthorityError,
    WrongEpochError,
)
from soma.types.intent import Intent, IntentScope
from soma.types.object import AddressOwner, ObjectRef, Shared
from soma.types.signature_info import AuthoritySignInfo, EmptySignInfo
from tests.types.conftest import KeyedCommittee, address, build_committee, seed, tx_digest

LAMPORT = 8


def odigest(n: int) -> ObjectDigest:
    return ObjectDigest(seed("odigest", n))


def make_effects(**changes: Any) -> TransactionEffects:
    """Effects of a transfer: gas (id 1) mutated, coin (id 2) created, stake receipt (id 3)
    deleted, system state (id 5) mutated; sorted by ID."""
    owner = AddressOwner(address(0))

    def change(ini: Any, out: Any, op: IDOperation) -> EffectsObjectChange:
        return EffectsObjectChange(ini, out, op)

    changed = (
        ChangedObject(
            ObjectID.from_int(1),
            change(
                ObjectInExist(3, odigest(1), owner),
                ObjectOutWrite(odigest(11), owner),
                IDOperation.NONE,
            ),
        ),
        ChangedObject(
            ObjectID.from_int(2),
            change(
                ObjectInNotExist(),
                ObjectOutWrite(odigest(12), AddressOwner(address(1))),
                IDOperation.CREATED,
            ),
        ),
        ChangedObject(
            ObjectID.from_int(3),
            change(ObjectInExist(7, odigest(3), owner), ObjectOutNotExist(), IDOperation.DELETED),
        ),
        ChangedObject(
            ObjectID.from_int(5),
            change(
                ObjectInExist(4, odigest(5), Shared(1)),
                ObjectOutWrite(odigest(15), Shared(1)),
                IDOperation.NONE,
            ),
        ),
    )
    fields: dict[str, Any] = {
        "status": ExecutionSuccess(),
        "executed_epoch": 3,
        "transaction_digest": tx_digest(0),
        "dependencies": (tx_digest(1), tx_digest(2)),
        "changed_objects": changed,
        "gas_object_index": 0,
        "gas_used": 1000,
        "lamport_version": LAMPORT,
    }
    fields.update(changes)
    return TransactionEffects(**fields)


@pytest.fixture
def kc() -> KeyedCommittee:
    return build_committee([1, 1, 1, 1], epoch=3)


# --- effects helpers and digest --------------------------------------------------------------


def test_effects_helpers_return_what_changed_objects_say() -> None:
    fx = make_effects()
    assert fx.created() == [ObjectRef(ObjectID.from_int(2), LAMPORT, odigest(12))]
    assert fx.mutated() == [
        ObjectRef(ObjectID.from_int(1), LAMPORT, odigest(11)),
        ObjectRef(ObjectID.from_int(5), LAMPORT, odigest(15)),
    ]
    assert fx.deleted() == [ObjectID.from_int(3)]
    assert fx.gas_object() == ObjectRef(ObjectID.from_int(1), LAMPORT, odigest(11))
    assert fx.all_written() == [
        fx.mutated()[0],
        fx.created()[0],
        fx.mutated()[1],
    ]
    assert fx.status.is_success()


def test_effects_gas_object_absent_or_written() -> None:
    assert make_effects(gas_object_index=None).gas_object() is None
    assert make_effects(gas_object_index=1).gas_object() == ObjectRef(
        ObjectID.from_int(2), LAMPORT, odigest(12)
    )


@pytest.mark.parametrize("index", [2, 4, 2**32 - 1])
def test_effects_gas_index_must_name_a_written_object(index: int) -> None:
    """Index 2 is a deleted object, 4 and beyond are outside the changed objects: such
    effects are never constructed, and never decoded from a peer's bytes."""
    with pytest.raises(InvalidValueError):
        make_effects(gas_object_index=index)
    valid = make_effects(gas_object_index=1)
    index_at = len(valid.to_bytes()) - 8 - 8 - 4  # gas index u32 precedes two u64s
    raw = bytearray(valid.to_bytes())
    raw[index_at : index_at + 4] = index.to_bytes(4, "little")
    with pytest.raises(InvalidValueError):
        TransactionEffects.from_bytes(bytes(raw))


def test_effects_with_no_changes() -> None:
    fx = make_effects(changed_objects=(), gas_object_index=None)
    assert fx.created() == fx.mutated() == fx.deleted() == fx.all_written() == []


def test_effects_digest_is_tagged_blake2b_and_stable() -> None:
    fx = make_effects()
    expected = hashlib.blake2b(b"TransactionEffects::" + fx.to_bytes(), digest_size=32).digest()
    assert fx.digest() == expected
    assert isinstance(fx.digest(), TransactionEffectsDigest)
    assert fx.digest() == fx.digest()
    assert make_effects().digest() == fx.digest()
    assert TransactionEffects.from_bytes(fx.to_bytes()).digest() == fx.digest()


ALTERNATIVES: dict[str, Any] = {
    "status": ExecutionFailure(InsufficientGas()),
    "executed_epoch": 4,
    "transaction_digest": tx_digest(9),
    "dependencies": (tx_digest(1),),
    "changed_objects": make_effects().changed_objects[:2],
    "gas_object_index": None,
    "gas_used": 1001,
    "lamport_version": LAMPORT + 1,
}


def test_alternatives_cover_every_field() -> None:
    assert set(ALTERNATIVES) == {f.name for f in dataclasses.fields(TransactionEffects)}


@pytest.mark.parametrize("field", sorted(ALTERNATIVES))
def test_effects_digest_changes_with_every_field(field: str) -> None:
    base = make_effects()
    changed = make_effects(**{field: ALTERNATIVES[field]})
    assert changed != base
    assert changed.digest() != base.digest()
    # Replacing after the digest was cached does not reuse the old digest.
    base.digest()
    replaced = dataclasses.replace(base, **{field: ALTERNATIVES[field]})
    assert replaced.digest() == changed.digest()


def test_effects_digest_depends_on_nested_change() -> None:
    base = make_effects()
    objs = list(base.changed_objects)
    objs[1] = dataclasses.replace(
        objs[1],
        change=dataclasses.replace(
            objs[1].change, output_state=ObjectOutWrite(odigest(99), AddressOwner(address(1)))
        ),
    )
    assert make_effects(changed_objects=tuple(objs)).digest() != base.digest()


# --- signed envelopes ------------------------------------------------------------------------


def test_signed_effects_verify(kc: KeyedCommittee) -> None:
    fx = make_effects()
    for i in range(4):
        signed = SignedTransactionEffects.sign(fx, kc.keys[i], 3)
        assert signed.data == fx
        assert signed.intent == Intent.soma(IntentScope.TRANSACTION_EFFECTS)
        assert signed.auth_signature.authority == kc.committee.members[i].name
        signed.verify(kc.committee)


def test_signed_effects_wire_round_trip(kc: KeyedCommittee) -> None:
    signed = SignedTransactionEffects.sign(make_effects(), kc.keys[0], 3)
    back = SignedTransactionEffects.from_bytes(signed.to_bytes())
    assert back == signed
    back.verify(kc.committee)


def test_signed_effects_from_non_member(kc: KeyedCommittee) -> None:
    outsider = build_committee([1], epoch=3, key_offset=60)
    signed = SignedTransactionEffects.sign(make_effects(), outsider.keys[0], 3)
    signed.verify(outsider.committee)
    with pytest.raises(UnknownAuthorityError):
        signed.verify(kc.committee)


def test_signed_effects_other_epoch(kc: KeyedCommittee) -> None:
    # Effects executed in epoch 3 are never signed in another epoch.
    with pytest.raises(WrongEpochError):
        SignedTransactionEffects.sign(make_effects(), kc.keys[0], 2)
    # Effects of epoch 2, signed in epoch 2, do not verify against the epoch-3 committee.
    old = SignedTransactionEffects.sign(make_effects(executed_epoch=2), kc.keys[0], 2)
    with pytest.raises(WrongEpochError):
        old.verify(kc.committee)
    # Effects of epoch 3 whose signature claims epoch 3 but was made over epoch 2.
    fx = make_effects()
    forged = AuthoritySignInfo.create(kc.keys[0], 2, TransactionEffects.INTENT, fx.to_bytes())
    relabelled = SignedTransactionEffects(fx, dataclasses.replace(forged, epoch=3))
    with pytest.raises(InvalidSignatureError):
        relabelled.verify(kc.committee)


def test_signed_effects_with_swapped_data(kc: KeyedCommittee) -> None:
    signed = SignedTransactionEffects.sign(make_effects(), kc.keys[0], 3)
    swapped = dataclasses.replace(signed, data=make_effects(gas_used=1))
    with pytest.raises(InvalidSignatureError):
        swapped.verify(kc.committee)


def test_effects_signature_is_not_a_transaction_signature(kc: KeyedCommittee) -> None:
    """The envelope checks under the data's own intent: a signature over the same bytes
    under another scope does not verify."""
    fx = make_effects()
    signed = SignedTransactionEffects.sign(fx, kc.keys[0], 3)
    wrong = kc.sign(0, Intent.soma(IntentScope.TRANSACTION_DATA), fx.to_bytes())
    forged = dataclasses.replace(signed, auth_signature=wrong)
    with pytest.raises(InvalidSignatureError):
        forged.verify(kc.committee)


# --- certified envelopes -----------------------------------------------------------------------


def _signed(kc: KeyedCommittee, fx: TransactionEffects, *idx: int) -> list[Any]:
    return [SignedTransactionEffects.sign(fx, kc.keys[i], kc.epoch) for i in idx]


def test_certified_effects_verify_and_round_trip(kc: KeyedCommittee) -> None:
    fx = make_effects()
    cert = CertifiedTransactionEffects.from_signed(kc.committee, _signed(kc, fx, 2, 0, 3))
    assert cert.data == fx
    assert cert.auth_signature.signer_indices() == [0, 2, 3]
    cert.verify(kc.committee)
    wire = cert.to_bytes()
    back = CertifiedTransactionEffects.from_bytes(wire)
    assert back == cert
    assert back.to_bytes() == wire
    back.verify(kc.committee)
    assert back.data.digest() == fx.digest()


def test_certified_effects_need_a_quorum(kc: KeyedCommittee) -> None:
    cert = CertifiedTransactionEffects.from_signed(kc.committee, _signed(kc, make_effects(), 0, 1))
    with pytest.raises(InsufficientStakeError):
        cert.verify(kc.committee)


def test_certified_effects_with_differing_data(kc: KeyedCommittee) -> None:
    signed = _signed(kc, make_effects(), 0, 1) + _signed(kc, make_effects(gas_used=7), 2)
    with pytest.raises(InvalidQuorumSignatureError):
        CertifiedTransactionEffects.from_signed(kc.committee, signed)


def test_certified_effects_from_nothing(kc: KeyedCommittee) -> None:
    with pytest.raises(InvalidQuorumSignatureError):
        CertifiedTransactionEffects.from_signed(kc.committee, [])


def test_certified_effects_with_swapped_data(kc: KeyedCommittee) -> None:
    cert = CertifiedTransactionEffects.from_signed(
        kc.committee, _signed(kc, make_effects(), 0, 1, 2)
    )
    swapped = dataclasses.replace(cert, data=make_effects(gas_used=1))
    with pytest.raises(InvalidSignatureError):
        swapped.verify(kc.committee)


def test_certified_effects_against_another_epoch(kc: KeyedCommittee) -> None:
    cert = CertifiedTransactionEffects.from_signed(
        kc.committee, _signed(kc, make_effects(), 0, 1, 2)
    )
    with pytest.raises(WrongEpochError):
        cert.verify(build_committee([1, 1, 1, 1], epoch=4).committee)


def test_unsigned_envelope_wraps_data() -> None:
    fx = make_effects()
    env = UnsignedEnvelope.wrap(fx)
    assert env.data == fx
    assert env.auth_signature == EmptySignInfo()
    assert env.intent == TransactionEffects.INTENT


# --- canonical form of effects ----------------------------------------------------------


def _swap(changes: tuple[ChangedObject, ...], i: int, j: int) -> tuple[ChangedObject, ...]:
    out = list(changes)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


BASE_CHANGES = make_effects().changed_objects

NON_CANONICAL: dict[str, dict[str, Any]] = {
    "unsorted changes": {"changed_objects": _swap(BASE_CHANGES, 0, 1), "gas_object_index": 1},
    "repeated change": {"changed_objects": (BASE_CHANGES[0], BASE_CHANGES[0])},
    "unsorted dependencies": {"dependencies": (tx_digest(2), tx_digest(1))},
    "repeated dependency": {"dependencies": (tx_digest(1), tx_digest(1))},
    "depends on itself": {"dependencies": (make_effects().transaction_digest,)},
    "input version at the Lamport version": {"lamport_version": 7},
    "created object that existed": {
        "changed_objects": (
            dataclasses.replace(
                BASE_CHANGES[0],
                change=dataclasses.replace(
                    BASE_CHANGES[0].change, id_operation=IDOperation.CREATED
                ),
            ),
        ),
    },
    "deleted object still written": {
        "changed_objects": (
            dataclasses.replace(
                BASE_CHANGES[0],
                change=dataclasses.replace(
                    BASE_CHANGES[0].change, id_operation=IDOperation.DELETED
                ),
            ),
        ),
    },
}


@pytest.mark.parametrize("case", sorted(NON_CANONICAL))
def test_non_canonical_effects_are_rejected(case: str) -> None:
    """Two honest validators must produce identical bytes, so a non-canonical shape is an
    error at construction (a local bug caught before signing) and at decoding."""
    with pytest.raises(InvalidValueError):
        make_effects(**NON_CANONICAL[case])


def test_non_canonical_effects_bytes_are_rejected() -> None:
    """Bytes a peer could send: effects whose dependencies are out of order."""
    fx = make_effects(dependencies=(tx_digest(1), tx_digest(2)))
    raw = fx.to_bytes()
    swapped = raw.replace(tx_digest(1) + tx_digest(2), tx_digest(2) + tx_digest(1))
    assert swapped != raw
    with pytest.raises(InvalidValueError):
        TransactionEffects.from_bytes(swapped)


def test_decoded_effects_keep_their_bytes() -> None:
    """A received value is never re-encoded: its bytes are the slice it came from."""
    raw = make_effects().to_bytes()
    decoded = TransactionEffects.from_bytes(raw)
    assert decoded.to_bytes() == raw
    assert decoded.__dict__["_bcs_bytes"] == raw
