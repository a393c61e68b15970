"""BatchEffectsCertifier: streamed effects bytes under (already verified) batch
signatures, grouped by their bytes, certified once a quorum signed the same bytes."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.authority.effects_certificate import BatchEffectsCertifier
from soma.types.digests import TransactionDigest
from soma.types.effects import (
    CertifiedTransactionEffects,
    ExecutionSuccess,
    TransactionEffects,
)
from soma.types.error import (
    InvalidSignatureError,
    InvalidValueError,
    SomaError,
    UnknownAuthorityError,
    WrongEpochError,
)
from soma.types.signature_batch import BATCH_INTENT, MerkleProof, MerkleTree, batch_leaves
from soma.types.signature_info import AuthoritySignInfo, Ed25519BatchQuorumSignInfo
from tests.types.conftest import KeyedCommittee, build_committee, seed

EPOCH = 2
TX = TransactionDigest(seed("tx", 1))
OTHER_TX = TransactionDigest(seed("tx", 2))


def effects_for(
    digest: TransactionDigest = TX, epoch: int = EPOCH, gas_used: int = 10
) -> TransactionEffects:
    return TransactionEffects(
        status=ExecutionSuccess(),
        executed_epoch=epoch,
        transaction_digest=digest,
        dependencies=(),
        changed_objects=(),
        gas_object_index=None,
        gas_used=gas_used,
        lamport_version=3,
    )


@dataclasses.dataclass
class Streamed:
    """What a client has from one validator's stream message for one transaction."""

    effects: bytes
    signature: AuthoritySignInfo
    tree: MerkleTree
    index: int
    proofs_made: int = 0

    def proof(self) -> MerkleProof:
        self.proofs_made += 1
        return self.tree.proof(self.index)


def streamed(kc: KeyedCommittee, member: int, effects: bytes, epoch: int | None = None) -> Streamed:
    """Member `member`'s stream message holding `effects` among unrelated ones, at a
    position that depends on the member."""
    filler = [
        effects_for(TransactionDigest(seed(f"filler-{member}", n))).to_bytes()
        for n in range(member + 2)
    ]
    items = [*filler[:member], effects, *filler[member:]]
    tree = MerkleTree(batch_leaves(TransactionEffects.INTENT, items))
    signature = AuthoritySignInfo.create(
        kc.keys[member], kc.epoch if epoch is None else epoch, BATCH_INTENT, tree.root
    )
    return Streamed(effects, signature, tree, member)


def add(certifier: BatchEffectsCertifier, item: Streamed) -> CertifiedTransactionEffects | None:
    return certifier.add(item.effects, item.signature, item.proof)


@pytest.fixture
def kc4() -> KeyedCommittee:
    return build_committee([1, 1, 1, 1], epoch=EPOCH)


def test_a_certificate_forms_exactly_at_quorum(kc4: KeyedCommittee) -> None:
    data = effects_for().to_bytes()
    for order in itertools.permutations(range(4)):
        certifier = BatchEffectsCertifier(kc4.committee, TX)
        assert add(certifier, streamed(kc4, order[0], data)) is None
        assert add(certifier, streamed(kc4, order[1], data)) is None
        assert certifier.certificate is None
        cert = add(certifier, streamed(kc4, order[2], data))
        assert cert is not None
        assert certifier.certificate is cert
        assert cert.auth_signature.signer_indices() == sorted(order[:3])
        cert.verify(kc4.committee)
        # Later copies change nothing.
        assert add(certifier, streamed(kc4, order[3], data)) is cert
        assert cert.auth_signature.signer_indices() == sorted(order[:3])


def test_unequal_stakes_certify_at_the_quorum_threshold() -> None:
    kc = build_committee([1, 2, 3, 4], epoch=EPOCH, key_offset=10)
    assert kc.committee.quorum_threshold == 7
    data = effects_for().to_bytes()
    certifier = BatchEffectsCertifier(kc.committee, TX)
    for member in (0, 1, 2):  # 1 + 2 + 3 = 6
        assert add(certifier, streamed(kc, member, data)) is None
    cert = add(certifier, streamed(kc, 3, data))
    assert cert is not None
    cert.verify(kc.committee)
    certifier = BatchEffectsCertifier(kc.committee, TX)
    assert add(certifier, streamed(kc, 3, data)) is None  # 4
    cert = add(certifier, streamed(kc, 2, data))  # 7
    assert cert is not None
    assert cert.auth_signature.signer_indices() == [2, 3]
    cert.verify(kc.committee)


@settings(max_examples=30, deadline=None)
@given(stakes=st.lists(st.integers(1, 50), min_size=1, max_size=7), data=st.data())
def test_the_certificate_appears_with_the_first_quorum_prefix(
    stakes: list[int], data: st.DataObject
) -> None:
    kc = build_committee(stakes, epoch=EPOCH, key_offset=200)
    committee = kc.committee
    order = data.draw(st.permutations(range(committee.size)), label="order")
    effects = effects_for().to_bytes()
    certifier = BatchEffectsCertifier(committee, TX)
    stake = 0
    cert: CertifiedTransactionEffects | None = None
    for member in order:
        before = stake
        stake += committee.members[member].stake
        result = add(certifier, streamed(kc, member, effects))
        if before >= committee.quorum_threshold:
            assert result is cert
        elif stake >= committee.quorum_threshold:
            assert result is not None
            cert = result
        else:
            assert result is None
    assert cert is not None
    signers = cert.auth_signature.signer_indices()
    assert sum(committee.members[i].stake for i in signers) >= committee.quorum_threshold
    cert.verify(committee)


def test_an_authority_counts_once(kc4: KeyedCommittee) -> None:
    data = effects_for().to_bytes()
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    for _ in range(5):
        assert add(certifier, streamed(kc4, 0, data)) is None
    assert add(certifier, streamed(kc4, 1, data)) is None
    assert add(certifier, streamed(kc4, 1, data)) is None
    assert add(certifier, streamed(kc4, 2, data)) is not None


def test_differing_effects_bytes_are_kept_apart() -> None:
    kc = build_committee([1] * 7, epoch=EPOCH, key_offset=30)
    assert kc.committee.quorum_threshold == 5
    honest = effects_for(gas_used=10).to_bytes()
    other = effects_for(gas_used=11).to_bytes()
    certifier = BatchEffectsCertifier(kc.committee, TX)
    others = [streamed(kc, m, other) for m in (0, 1)]
    honest_items = [streamed(kc, m, honest) for m in (2, 3, 4, 5, 6)]
    # Interleaved: 2 + 4 stake has signed something for TX, but never 5 the same bytes.
    for item in [others[0], honest_items[0], others[1], *honest_items[1:4]]:
        assert add(certifier, item) is None
    cert = add(certifier, honest_items[4])
    assert cert is not None
    assert cert.data.to_bytes() == honest
    assert cert.auth_signature.signer_indices() == [2, 3, 4, 5, 6]
    cert.verify(kc.committee)
    # Only the copies that joined the certificate had their proofs made, once each.
    assert [i.proofs_made for i in others] == [0, 0]
    assert [i.proofs_made for i in honest_items] == [1, 1, 1, 1, 1]


def test_a_two_two_split_never_certifies(kc4: KeyedCommittee) -> None:
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    a, b = effects_for(gas_used=1).to_bytes(), effects_for(gas_used=2).to_bytes()
    for member, data in [(0, a), (1, b), (2, a), (3, b)]:
        assert add(certifier, streamed(kc4, member, data)) is None
    assert certifier.certificate is None


def test_effects_of_another_transaction_reaching_quorum_raise(kc4: KeyedCommittee) -> None:
    data = effects_for(OTHER_TX).to_bytes()
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    assert add(certifier, streamed(kc4, 0, data)) is None
    assert add(certifier, streamed(kc4, 1, data)) is None
    with pytest.raises(InvalidValueError, match="not of"):
        add(certifier, streamed(kc4, 2, data))
    assert certifier.certificate is None
    # The expected transaction's effects still certify from the remaining copies.
    good = effects_for(TX).to_bytes()
    for member in (0, 1):
        assert add(certifier, streamed(kc4, member, good)) is None
    assert add(certifier, streamed(kc4, 3, good)) is not None


def test_effects_of_another_epoch_reaching_quorum_raise(kc4: KeyedCommittee) -> None:
    data = effects_for(epoch=EPOCH + 1).to_bytes()
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    assert add(certifier, streamed(kc4, 0, data)) is None
    assert add(certifier, streamed(kc4, 1, data)) is None
    with pytest.raises(InvalidValueError, match="epoch"):
        add(certifier, streamed(kc4, 2, data))
    assert certifier.certificate is None


def test_signatures_of_another_epoch_reaching_quorum_raise(kc4: KeyedCommittee) -> None:
    data = effects_for().to_bytes()
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    assert add(certifier, streamed(kc4, 0, data)) is None
    assert add(certifier, streamed(kc4, 1, data, epoch=EPOCH - 1)) is None
    with pytest.raises(WrongEpochError):
        add(certifier, streamed(kc4, 2, data))
    assert certifier.certificate is None


def test_bytes_that_are_not_effects_reaching_quorum_raise(kc4: KeyedCommittee) -> None:
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    for member in (0, 1):
        assert add(certifier, streamed(kc4, member, b"\x07not effects")) is None
    with pytest.raises(SomaError):
        add(certifier, streamed(kc4, 2, b"\x07not effects"))
    assert certifier.certificate is None


def test_a_non_member_is_refused(kc4: KeyedCommittee) -> None:
    outsider = build_committee([1], epoch=EPOCH, key_offset=60)
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    with pytest.raises(UnknownAuthorityError):
        add(certifier, streamed(outsider, 0, effects_for().to_bytes()))


def test_the_certificate_verifies_and_round_trips(kc4: KeyedCommittee) -> None:
    effects = effects_for()
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    cert = None
    for member in (3, 1, 0):
        cert = add(certifier, streamed(kc4, member, effects.to_bytes()))
    assert cert is not None
    assert cert.data == effects
    quorum = cert.auth_signature
    assert isinstance(quorum, Ed25519BatchQuorumSignInfo)
    assert quorum.epoch == EPOCH
    assert quorum.signer_indices() == [0, 1, 3]
    # Each signer's proof is the position of the effects in that signer's own batch.
    assert [part.proof.index for part in quorum.signatures] == [0, 1, 3]
    cert.verify(kc4.committee)
    back = CertifiedTransactionEffects.from_bytes(cert.to_bytes())
    assert back == cert
    back.verify(kc4.committee)


def test_the_certifier_trusts_its_caller_but_the_certificate_does_not(
    kc4: KeyedCommittee,
) -> None:
    """Signatures are the caller's to verify (EffectsWatcher does); one that was not
    checked and is bad makes a certificate that fails verification."""
    data = effects_for().to_bytes()
    certifier = BatchEffectsCertifier(kc4.committee, TX)
    bad = streamed(kc4, 2, data)
    bad.signature = dataclasses.replace(
        bad.signature, signature=streamed(kc4, 1, data).signature.signature
    )
    add(certifier, streamed(kc4, 0, data))
    add(certifier, streamed(kc4, 1, data))
    cert = add(certifier, bad)
    assert cert is not None
    with pytest.raises(InvalidSignatureError):
        cert.verify(kc4.committee)
