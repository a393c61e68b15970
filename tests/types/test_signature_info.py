"""Authority signatures and Ed25519 quorum certificates."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types.error import (
    DuplicateSignerError,
    InsufficientStakeError,
    InvalidQuorumSignatureError,
    InvalidSignatureError,
    UnknownAuthorityError,
    WrongEpochError,
)
from soma.types.intent import Intent, IntentScope
from soma.types.signature_info import (
    AuthorityQuorumSignInfo,
    AuthoritySignInfo,
    Ed25519QuorumSignInfo,
    EmptySignInfo,
    authority_signing_digest,
)
from tests.types.conftest import KeyedCommittee, build_committee

INTENT = Intent.soma(IntentScope.TRANSACTION_EFFECTS)
DATA = b"effects bytes"
OTHER = b"other effects bytes"


@pytest.fixture
def kc4() -> KeyedCommittee:
    return build_committee([1, 1, 1, 1], epoch=5)


def bitmap(indices: list[int], size: int) -> bytes:
    out = bytearray((size + 7) // 8)
    for i in indices:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


# --- single authority signatures -------------------------------------------------------------


def test_authority_signature_verifies(kc4: KeyedCommittee) -> None:
    for i in range(4):
        info = kc4.sign(i, INTENT, DATA)
        assert info.epoch == 5
        assert info.authority == kc4.committee.members[i].name
        info.verify(kc4.committee, INTENT, DATA)
        # The signature is over Blake2b(intent || data || epoch LE).
        kc4.keys[i].public_key.verify(authority_signing_digest(INTENT, DATA, 5), info.signature)


def test_authority_signature_from_non_member(kc4: KeyedCommittee) -> None:
    outsider = build_committee([1], epoch=5, key_offset=50)
    info = outsider.sign(0, INTENT, DATA)
    with pytest.raises(UnknownAuthorityError):
        info.verify(kc4.committee, INTENT, DATA)


def test_authority_signature_wrong_epoch(kc4: KeyedCommittee) -> None:
    info = kc4.sign(0, INTENT, DATA, epoch=6)
    with pytest.raises(WrongEpochError):
        info.verify(kc4.committee, INTENT, DATA)


def test_authority_signature_replayed_in_another_epoch(kc4: KeyedCommittee) -> None:
    """Relabelling an old signature with the current epoch does not make it valid."""
    old = kc4.sign(0, INTENT, DATA, epoch=4)
    relabelled = dataclasses.replace(old, epoch=5)
    with pytest.raises(InvalidSignatureError):
        relabelled.verify(kc4.committee, INTENT, DATA)


def test_authority_signature_claimed_by_another_member(kc4: KeyedCommittee) -> None:
    info = kc4.sign(0, INTENT, DATA)
    stolen = dataclasses.replace(info, authority=kc4.committee.members[1].name)
    with pytest.raises(InvalidSignatureError):
        stolen.verify(kc4.committee, INTENT, DATA)


def test_authority_signature_other_data(kc4: KeyedCommittee) -> None:
    info = kc4.sign(2, INTENT, DATA)
    with pytest.raises(InvalidSignatureError):
        info.verify(kc4.committee, INTENT, OTHER)


def test_sign_info_wire_round_trip(kc4: KeyedCommittee) -> None:
    info = kc4.sign(1, INTENT, DATA)
    assert AuthoritySignInfo.from_bytes(info.to_bytes()) == info
    assert EmptySignInfo().to_bytes() == b""
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    wire = cert.to_bytes()
    assert wire[0] == 0  # the Ed25519 variant tag
    back = AuthorityQuorumSignInfo.from_bytes(wire)
    assert isinstance(back, Ed25519QuorumSignInfo)
    assert back == cert
    back.verify(kc4.committee, INTENT, DATA)


# --- quorum certificates: assembling ------------------------------------------------------------


def test_three_of_four_verifies(kc4: KeyedCommittee) -> None:
    for subset in itertools.combinations(range(4), 3):
        cert = kc4.certify(list(subset), INTENT, DATA)
        assert cert.epoch == 5
        assert cert.signer_indices() == list(subset)
        assert cert.signers == bitmap(list(subset), 4)
        assert len(cert.signatures) == 3
        cert.verify(kc4.committee, INTENT, DATA)
    kc4.certify([0, 1, 2, 3], INTENT, DATA).verify(kc4.committee, INTENT, DATA)


def test_two_of_four_is_insufficient(kc4: KeyedCommittee) -> None:
    for subset in itertools.combinations(range(4), 2):
        cert = kc4.certify(list(subset), INTENT, DATA)
        with pytest.raises(InsufficientStakeError):
            cert.verify(kc4.committee, INTENT, DATA)
    with pytest.raises(InsufficientStakeError):
        kc4.certify([], INTENT, DATA).verify(kc4.committee, INTENT, DATA)


def test_signatures_are_sorted_by_index_whatever_the_input_order(kc4: KeyedCommittee) -> None:
    infos = [kc4.sign(i, INTENT, DATA) for i in (3, 0, 2)]
    cert = Ed25519QuorumSignInfo.from_signatures(kc4.committee, infos)
    assert cert.signer_indices() == [0, 2, 3]
    assert cert.signatures == tuple(kc4.sign(i, INTENT, DATA).signature for i in (0, 2, 3))
    assert cert == kc4.certify([0, 2, 3], INTENT, DATA)
    cert.verify(kc4.committee, INTENT, DATA)


def test_same_signer_twice_is_rejected(kc4: KeyedCommittee) -> None:
    infos = [kc4.sign(i, INTENT, DATA) for i in (0, 1, 1)]
    with pytest.raises(DuplicateSignerError):
        Ed25519QuorumSignInfo.from_signatures(kc4.committee, infos)
    # Even if the second signature differs (equivocation over other data).
    infos = [kc4.sign(0, INTENT, DATA), kc4.sign(0, INTENT, OTHER)]
    with pytest.raises(DuplicateSignerError):
        Ed25519QuorumSignInfo.from_signatures(kc4.committee, infos)


def test_non_member_signature_is_rejected_when_assembling(kc4: KeyedCommittee) -> None:
    outsider = build_committee([1], epoch=5, key_offset=50)
    infos = [kc4.sign(0, INTENT, DATA), kc4.sign(1, INTENT, DATA), outsider.sign(0, INTENT, DATA)]
    with pytest.raises(UnknownAuthorityError):
        Ed25519QuorumSignInfo.from_signatures(kc4.committee, infos)


def test_wrong_epoch_signature_is_rejected_when_assembling(kc4: KeyedCommittee) -> None:
    infos = [kc4.sign(0, INTENT, DATA), kc4.sign(1, INTENT, DATA, epoch=4)]
    with pytest.raises(WrongEpochError):
        Ed25519QuorumSignInfo.from_signatures(kc4.committee, infos)


# --- quorum certificates: verifying ---------------------------------------------------------------


def test_certificate_against_committee_of_another_epoch(kc4: KeyedCommittee) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    same_members_next_epoch = build_committee([1, 1, 1, 1], epoch=6)
    assert same_members_next_epoch.committee.names() == kc4.committee.names()
    with pytest.raises(WrongEpochError):
        cert.verify(same_members_next_epoch.committee, INTENT, DATA)
    # Relabelling the certificate's epoch invalidates the signatures instead.
    relabelled = dataclasses.replace(cert, epoch=6)
    with pytest.raises(InvalidSignatureError):
        relabelled.verify(same_members_next_epoch.committee, INTENT, DATA)


@pytest.mark.parametrize("bit", [4, 5, 7])
def test_bitmap_bit_beyond_committee_size(kc4: KeyedCommittee, bit: int) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    signers = bytes([cert.signers[0] | (1 << bit)])
    extra = kc4.sign(3, INTENT, DATA).signature
    forged = Ed25519QuorumSignInfo(cert.epoch, signers, (*cert.signatures, extra))
    with pytest.raises(UnknownAuthorityError):
        forged.verify(kc4.committee, INTENT, DATA)


def test_bitmap_bit_beyond_committee_size_in_a_larger_bitmap() -> None:
    kc = build_committee([1] * 10)  # 2 bitmap bytes, bits 10..15 unused
    cert = kc.certify(list(range(7)), INTENT, DATA)
    signers = bytes([cert.signers[0], cert.signers[1] | 0x80])  # bit 15
    forged = Ed25519QuorumSignInfo(
        cert.epoch, signers, (*cert.signatures, kc.sign(9, INTENT, DATA).signature)
    )
    with pytest.raises(UnknownAuthorityError):
        forged.verify(kc.committee, INTENT, DATA)


@pytest.mark.parametrize("length", [0, 2, 3])
def test_bitmap_of_wrong_length(kc4: KeyedCommittee, length: int) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    signers = (cert.signers + bytes(3))[:length]
    forged = Ed25519QuorumSignInfo(cert.epoch, signers, cert.signatures)
    with pytest.raises(InvalidQuorumSignatureError):
        forged.verify(kc4.committee, INTENT, DATA)


def test_bitmap_length_follows_committee_size() -> None:
    for n, expected in [(1, 1), (8, 1), (9, 2), (16, 2), (17, 3)]:
        kc = build_committee([1] * n)
        assert len(kc.certify([0], INTENT, DATA).signers) == expected


def test_signer_count_differs_from_signature_count(kc4: KeyedCommittee) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    too_few = Ed25519QuorumSignInfo(cert.epoch, cert.signers, cert.signatures[:2])
    with pytest.raises(InvalidQuorumSignatureError):
        too_few.verify(kc4.committee, INTENT, DATA)
    too_many = Ed25519QuorumSignInfo(
        cert.epoch, cert.signers, (*cert.signatures, kc4.sign(3, INTENT, DATA).signature)
    )
    with pytest.raises(InvalidQuorumSignatureError):
        too_many.verify(kc4.committee, INTENT, DATA)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_signature_over_other_data(kc4: KeyedCommittee, position: int) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    sigs = list(cert.signatures)
    sigs[position] = kc4.sign(position, INTENT, OTHER).signature
    forged = dataclasses.replace(cert, signatures=tuple(sigs))
    with pytest.raises(InvalidSignatureError):
        forged.verify(kc4.committee, INTENT, DATA)


def test_one_signature_by_another_signers_key(kc4: KeyedCommittee) -> None:
    """Member 3's valid signature placed in member 2's slot."""
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    sigs = (*cert.signatures[:2], kc4.sign(3, INTENT, DATA).signature)
    forged = dataclasses.replace(cert, signatures=sigs)
    with pytest.raises(InvalidSignatureError):
        forged.verify(kc4.committee, INTENT, DATA)


def test_swapped_signatures_are_rejected(kc4: KeyedCommittee) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    s = cert.signatures
    forged = dataclasses.replace(cert, signatures=(s[1], s[0], s[2]))
    with pytest.raises(InvalidSignatureError):
        forged.verify(kc4.committee, INTENT, DATA)


def test_certificate_for_other_data(kc4: KeyedCommittee) -> None:
    cert = kc4.certify([0, 1, 2], INTENT, DATA)
    with pytest.raises(InvalidSignatureError):
        cert.verify(kc4.committee, INTENT, OTHER)


def test_custom_threshold_is_honoured(kc4: KeyedCommittee) -> None:
    committee = kc4.committee
    two = kc4.certify([1, 3], INTENT, DATA)
    with pytest.raises(InsufficientStakeError):
        two.verify(committee, INTENT, DATA)
    two.verify(committee, INTENT, DATA, threshold=committee.validity_threshold)
    one = kc4.certify([2], INTENT, DATA)
    with pytest.raises(InsufficientStakeError):
        one.verify(committee, INTENT, DATA, threshold=committee.validity_threshold)
    # A threshold above the default quorum is honoured too.
    three = kc4.certify([0, 1, 2], INTENT, DATA)
    with pytest.raises(InsufficientStakeError):
        three.verify(committee, INTENT, DATA, threshold=4)
    kc4.certify([0, 1, 2, 3], INTENT, DATA).verify(committee, INTENT, DATA, threshold=4)


@pytest.mark.parametrize("threshold", [0, -5])
def test_empty_certificate_never_verifies(kc4: KeyedCommittee, threshold: int) -> None:
    """Whatever threshold a caller passes, a certificate without signers is no proof."""
    empty = Ed25519QuorumSignInfo.from_signatures(kc4.committee, [])
    with pytest.raises(InvalidQuorumSignatureError):
        empty.verify(kc4.committee, INTENT, DATA, threshold=threshold)


def test_stake_weighting_one_heavy_signer() -> None:
    kc = build_committee([1, 1, 1, 97])
    committee = kc.committee
    assert committee.quorum_threshold == 67
    kc.certify([3], INTENT, DATA).verify(committee, INTENT, DATA)
    with pytest.raises(InsufficientStakeError):
        kc.certify([0, 1, 2], INTENT, DATA).verify(committee, INTENT, DATA)


def test_sixty_seven_of_a_hundred() -> None:
    kc = build_committee([1] * 100, key_offset=1000)
    committee = kc.committee
    assert committee.total_stake == 100
    assert committee.quorum_threshold == 67
    infos = [kc.sign(i, INTENT, DATA) for i in range(100)]
    signers = list(range(0, 100, 3)) + list(range(1, 100, 3))[:34]
    assert len(set(signers)) == 67
    cert = Ed25519QuorumSignInfo.from_signatures(committee, [infos[i] for i in signers])
    assert len(cert.signers) == 13
    cert.verify(committee, INTENT, DATA)
    short = Ed25519QuorumSignInfo.from_signatures(committee, [infos[i] for i in signers[:66]])
    with pytest.raises(InsufficientStakeError):
        short.verify(committee, INTENT, DATA)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_verify_succeeds_iff_signers_hold_a_quorum(data: st.DataObject) -> None:
    stakes = data.draw(st.lists(st.integers(1, 50), min_size=1, max_size=10), label="stakes")
    kc = build_committee(stakes, epoch=2)
    subset = data.draw(
        st.lists(st.integers(0, len(stakes) - 1), unique=True, max_size=len(stakes)),
        label="signers",
    )
    cert = kc.certify(subset, INTENT, DATA)
    assert cert.signer_indices() == sorted(subset)
    if sum(stakes[i] for i in subset) >= kc.committee.quorum_threshold:
        cert.verify(kc.committee, INTENT, DATA)
    else:
        with pytest.raises(InsufficientStakeError):
            cert.verify(kc.committee, INTENT, DATA)
