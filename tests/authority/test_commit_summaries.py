"""Commit summaries: built identically by every validator, certified from signatures
ordered by consensus, stored, rebuilt for a store from before summaries, and a fork (a
validator whose execution differs) detected and halted at its commit while the others
go on."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from soma.authority import state as state_module
from soma.authority.commit_summaries import MAX_PENDING_INDICES, SummaryCertifier
from soma.authority.faults import InjectedFaults, parse
from soma.authority.summary_store import CERTIFIED_THROUGH
from soma.consensus.local_committee import generate_committee
from soma.types.commit_summary import (
    CertifiedCommitSummary,
    CommitContents,
    CommitSummary,
    SignedCommitSummary,
    effects_digest,
    transactions_digest,
)
from soma.types.digests import CommitDigest, CommitSummaryDigest, TransactionEffectsDigest
from soma.types.error import SomaError
from soma.types.transaction import SignedTransaction, TransferCoin
from tests.authority.network import TIMEOUT_S, TestNetwork


def _transfer(
    net: TestNetwork, sender: int, recipient: int, amount: int, seen_by: int = 0
) -> SignedTransaction:
    """A transfer from `sender`'s genesis coin at the version `seen_by` has."""
    gas = net.coin_ref(net.genesis_coin_ids[sender], validator=seen_by)
    return net.sign(sender, TransferCoin(gas, amount, net.addresses[recipient]), gas)


# --- the certifier (sans-IO) -------------------------------------------------------------


def _summary(index: int, epoch: int = 0, salt: int = 0) -> CommitSummary:
    return CommitSummary(
        epoch=epoch,
        index=index,
        commit_digest=CommitDigest(bytes([salt]) * 32),
        previous_digest=CommitSummaryDigest.zero(),
        transactions_digest=transactions_digest([]),
        effects_digest=effects_digest([]),
        state_root=bytes(32),
        timestamp_ms=index,
        end_of_epoch=None,
    )


COMMITTEE, KEYS = generate_committee(4, seed=3)


def _signed(index: int, signer: int, salt: int = 0) -> SignedCommitSummary:
    return SignedCommitSummary.sign(_summary(index, salt=salt), KEYS[signer].authority, 0)


def test_a_quorum_of_signatures_over_one_summary_certifies_it() -> None:
    certifier = SummaryCertifier(COMMITTEE, 0)
    assert certifier.add([_signed(1, 0), _signed(1, 1)]) == []
    made = certifier.add([_signed(1, 2), _signed(1, 3)])
    assert len(made) == 1 and made[0].data == _summary(1)
    made[0].verify(COMMITTEE)
    assert certifier.certified_through == 1 and certifier.is_certified(1)
    assert certifier.add([_signed(1, 3)]) == []  # late ones change nothing


def test_signatures_over_different_summaries_do_not_add_up() -> None:
    certifier = SummaryCertifier(COMMITTEE, 0)
    assert certifier.add([_signed(1, 0), _signed(1, 1, salt=1), _signed(1, 2, salt=2)]) == []
    made = certifier.add([_signed(1, 3, salt=1), _signed(1, 0, salt=1)])
    # Validator 0 already voted for salt 0: its second vote does not count.
    assert made == [] and certifier.rejected == 1


def test_bad_signatures_other_epochs_and_far_indices_are_refused() -> None:
    certifier = SummaryCertifier(COMMITTEE, 0)
    forged = SignedCommitSummary(_summary(1), _signed(1, 1, salt=9).auth_signature)
    other_epoch = SignedCommitSummary.sign(_summary(1, epoch=1), KEYS[2].authority, 1)
    far = _signed(MAX_PENDING_INDICES + 5, 0)
    assert certifier.add([forged, other_epoch, far]) == []
    assert certifier.rejected == 2 and certifier.pending() == 0


def test_certificates_may_complete_out_of_order() -> None:
    certifier = SummaryCertifier(COMMITTEE, 0)
    made = certifier.add([_signed(2, i) for i in range(3)])
    assert [c.data.index for c in made] == [2] and certifier.certified_through == 0
    made = certifier.add([_signed(1, i) for i in range(3)])
    assert [c.data.index for c in made] == [1] and certifier.certified_through == 2


def test_one_order_of_signatures_gives_one_certificate() -> None:
    signatures = [_signed(1, i) for i in range(4)]
    random.Random(1).shuffle(signatures)
    first = SummaryCertifier(COMMITTEE, 0).add(signatures)
    second = SummaryCertifier(COMMITTEE, 0).add(signatures)
    assert first[0].to_bytes() == second[0].to_bytes()


async def test_contents_digest_covers_order_and_signatures() -> None:
    net = TestNetwork(size=1, accounts=2)
    await net.start()
    try:
        a, b = _transfer(net, 0, 1, 5), _transfer(net, 1, 0, 5)
    finally:
        await net.stop()
        net.close()
    assert CommitContents(1, (a, b)).digest() != CommitContents(1, (b, a)).digest()
    resigned = type(a)(a.data, (b.tx_signatures[0],))
    assert transactions_digest([resigned]) != transactions_digest([a])
    assert effects_digest([TransactionEffectsDigest.zero()]) != effects_digest([])


def test_fault_settings_parse() -> None:
    assert parse("") == InjectedFaults()
    assert parse("diverge_at=7") == InjectedFaults(diverge_at=7)
    with pytest.raises(SomaError, match="unknown fault"):
        parse("explode=1")


# --- a network of validators ----------------------------------------------------------------


async def _until(condition: object, what: str) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_every_validator_builds_and_certifies_the_same_summaries(tmp_path: Path) -> None:
    net = TestNetwork(size=4, accounts=4, path=tmp_path)
    await net.start()
    try:
        for i in range(6):
            await net.execute(_transfer(net, i % 4, (i + 1) % 4, 10))
        await _until(lambda: all(s.highest_certified_commit >= 10 for s in net.live()), "cert")
        index = min(s.highest_certified_commit for s in net.live())
        summaries = [s.store.summaries.summary(index) for s in net.live()]
        assert None not in summaries and len({s.digest() for s in summaries}) == 1  # type: ignore[union-attr]
        certified = [s.store.summaries.certified_summary(index) for s in net.live()]
        for c in certified:
            assert isinstance(c, CertifiedCommitSummary)
            c.verify(net.committee)
            assert c.data == summaries[0]
        # The chain: each summary names the previous one, back to genesis.
        store = net.live()[0].store.summaries
        for i in range(1, index + 1):
            current, previous = store.summary(i), store.summary(i - 1)
            assert current is not None and previous is not None
            assert current.previous_digest == previous.digest()
        assert all(s.fork is None for s in net.live())
    finally:
        await net.stop()
        net.close()


async def test_a_validator_whose_execution_diverges_halts_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = TestNetwork(size=4, accounts=4, path=tmp_path)
    diverging = 3
    target = 5

    class Diverging(state_module.AuthorityState):
        def _advance_accumulator(self) -> None:
            monkeypatch.setattr(state_module, "_FAULTS", InjectedFaults(diverge_at=target))
            try:
                super()._advance_accumulator()
            finally:
                monkeypatch.setattr(state_module, "_FAULTS", InjectedFaults())

    net.state_factory[diverging] = Diverging
    await net.start()
    try:
        bad = net.validators[diverging]
        await _until(lambda: bad.state is not None and bad.state.fork is not None, "fork")
        assert bad.state is not None and bad.state.fork is not None
        fork = bad.state.fork
        assert fork.index == target and fork.own != fork.certified
        own = bad.state.store.summaries.summary(target)
        assert own is not None and own.digest() == fork.own
        halted_at = bad.state.executed_commit
        # The others certify on past the fork and keep executing transfers.
        await net.execute(_transfer(net, 0, 1, 10), via=[0, 1, 2])
        honest = [net.validators[i].state for i in range(3)]
        await _until(
            lambda: all(s is not None and s.highest_certified_commit > target + 5 for s in honest),
            "progress",
        )
        assert all(s is not None and s.fork is None for s in honest)
        assert bad.state.executed_commit == halted_at  # halted: nothing executed since
    finally:
        await net.stop()
        net.close()


async def test_a_restart_keeps_the_chain_and_rebuilds_missing_summaries(tmp_path: Path) -> None:
    net = TestNetwork(size=4, accounts=4, path=tmp_path)
    await net.start()
    try:
        await net.execute(_transfer(net, 0, 1, 10))
        await _until(lambda: all(s.highest_certified_commit >= 4 for s in net.live()), "cert")
        await net.stop_validator(0)
        v = net.validators[0]
        last = v.store.summaries.last_summary()
        assert last is not None and last.index >= 4
        # A store from before summaries: drop the last three; the restart rebuilds them.
        batch = v.store.db.batch()
        for index in range(last.index - 2, last.index + 1):
            batch.delete(v.store.summaries.own, index)
        v.store.db.write(batch, sync=True)
        await net.start_validator(0)
        rebuilt = [v.store.summaries.summary(i) for i in range(last.index - 2, last.index + 1)]
        other = net.validators[1].store.summaries
        assert [s.digest() for s in rebuilt if s] == [
            other.summary(i).digest()  # type: ignore[union-attr]
            for i in range(last.index - 2, last.index + 1)
        ]
        await net.execute(_transfer(net, 1, 2, 10, seen_by=1))
        await _until(
            lambda: v.state is not None and v.state.highest_certified_commit > last.index + 3,
            "certified after restart",
        )
        assert v.state is not None and v.state.fork is None
    finally:
        await net.stop()
        net.close()


async def test_a_summary_left_uncertified_is_signed_again_and_certified(tmp_path: Path) -> None:
    """Validators stopped before their signatures over commit k were ordered (here: k's
    certificate erased everywhere): after a restart they sign k again, and the chain of
    certificates has no gap for followers."""
    net = TestNetwork(size=4, accounts=4, path=tmp_path)
    await net.start()
    try:
        await _until(lambda: all(s.highest_certified_commit >= 8 for s in net.live()), "certs")
        for i in range(4):
            await net.stop_validator(i)
        gap = 5
        for v in net.validators:
            v.store.summaries.certified.delete(gap, sync=True)
            v.store.summaries.meta.delete(CERTIFIED_THROUGH, sync=True)
            assert v.store.summaries.certified_extent(0)[0] == gap - 1
        for i in range(4):
            await net.start_validator(i)
        await _until(
            lambda: all(
                v.store.summaries.certified_summary(gap) is not None
                and v.state is not None
                and v.state.highest_certified_commit > gap + 5
                for v in net.validators
            ),
            "the gap certified",
        )
    finally:
        await net.stop()
        net.close()
