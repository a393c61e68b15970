"""ConsensusHandler: each commit becomes a ConsensusCommitPrologue followed by the fresh,
valid user transactions of its blocks, with shared versions assigned in that order;
junk, bad signatures, duplicates and replayed commits are dropped."""

from __future__ import annotations

import pytest

from soma.authority.consensus_handler import ConsensusHandler
from soma.authority.epoch_store import AuthorityPerEpochStore, PendingTransaction
from soma.authority.execution.executor import execute_transaction
from soma.authority.synthetic_commits import SyntheticCommits
from soma.authority.validation import check_signature_and_expiry
from soma.types.consensus.commit import CommittedSubDag
from soma.types.consensus.transaction import UserTransaction
from soma.types.crypto import UserSignature
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError
from soma.types.genesis import SYSTEM_ADDRESS
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID
from soma.types.transaction import (
    AddStake,
    ConsensusCommitPrologue,
    SignedTransaction,
    TransferCoin,
)
from tests.authority.helpers import FEE, Chain


class Harness:
    """A handler over a fresh epoch store for `chain`, verifying signatures itself and
    collecting what it hands to execution."""

    def __init__(self, chain: Chain, executed: set[TransactionDigest] | None = None) -> None:
        self.chain = chain
        system = chain.system_state()
        self.epoch_store = AuthorityPerEpochStore.open_memory(system.committee(), system)
        self.executed = executed if executed is not None else set()
        self.sunk: list[list[PendingTransaction]] = []
        self.handler = self.new_handler()

    def new_handler(self) -> ConsensusHandler:
        return ConsensusHandler(
            self.epoch_store,
            executed_many=lambda ds: [d in self.executed for d in ds],
            live_object=self.chain.store.get_live_object,
            verify=self.verify,
            sink=self.sunk.append,
        )

    def verify(self, tx: SignedTransaction) -> bool:
        try:
            check_signature_and_expiry(tx, self.epoch_store.epoch)
        except SomaError:
            return False
        return True

    def handle(self, subdag: CommittedSubDag) -> list[PendingTransaction]:
        return self.handler.handle(subdag)


@pytest.fixture
def chain() -> Chain:
    return Chain(coins_per_account=4)


def transfer(chain: Chain, account: int, amount: int = 5) -> SignedTransaction:
    coin, gas = chain.coins(account)[:2]
    return chain.sign(account, TransferCoin(coin, amount, chain.addresses[0]), gas)


def raw(tx: SignedTransaction) -> bytes:
    return UserTransaction(tx).to_bytes()


def bad_signature(tx: SignedTransaction) -> SignedTransaction:
    sig = bytes(tx.tx_signatures[0])
    return SignedTransaction(tx.data, (UserSignature(sig[:9] + bytes([sig[9] ^ 4]) + sig[10:]),))


def user_digests(pending: list[PendingTransaction]) -> list[TransactionDigest]:
    return [p.transaction.digest() for p in pending[1:]]


# --- the prologue and the order --------------------------------------------------------


def test_the_commit_prologue_comes_first_then_blocks_in_order(chain: Chain) -> None:
    harness = Harness(chain)
    commits = SyntheticCommits()
    txs = [transfer(chain, a) for a in range(3)]
    subdag = commits.next([[raw(txs[2])], [raw(txs[0]), raw(txs[1])]])
    pending = harness.handle(subdag)
    assert harness.sunk == [pending]
    prologue = pending[0].transaction
    assert isinstance(prologue.data.kind, ConsensusCommitPrologue)
    assert prologue.data.kind == ConsensusCommitPrologue(
        epoch=0,
        round=subdag.leader.round,
        commit_index=1,
        commit_timestamp_ms=subdag.timestamp_ms,
        consensus_commit_digest=subdag.commit.digest(),
    )
    assert prologue.data.sender == SYSTEM_ADDRESS and prologue.tx_signatures == ()
    assert user_digests(pending) == [txs[2].digest(), txs[0].digest(), txs[1].digest()]
    assert [p.key for p in pending] == [(1, i) for i in range(4)]
    # All of it is in the epoch store.
    store = harness.epoch_store
    assert store.last_consensus_commit() == 1
    recorded = store.commit_transactions(1)
    assert recorded is not None
    assert recorded.digests == tuple(p.transaction.digest() for p in pending)
    assert recorded.timestamp_ms == subdag.timestamp_ms
    assert list(store.pending()) == pending
    assert all(store.is_processed(p.transaction.digest()) for p in pending)


def test_an_empty_commit_orders_only_its_prologue(chain: Chain) -> None:
    harness = Harness(chain)
    commits = SyntheticCommits()
    first = harness.handle(commits.next([]))
    second = harness.handle(commits.next([[], []]))
    assert len(first) == len(second) == 1
    assert first[0].transaction.digest() != second[0].transaction.digest()
    assert harness.epoch_store.last_consensus_commit() == 2


# --- what is dropped -------------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [b"", b"\xff", b"\x00", b"\x07garbage", b"\x00" + b"\x01" * 40],
)
def test_undecodable_bytes_are_dropped(chain: Chain, junk: bytes) -> None:
    harness = Harness(chain)
    good = transfer(chain, 1)
    pending = harness.handle(SyntheticCommits().next([[junk, raw(good)]]))
    assert user_digests(pending) == [good.digest()]
    assert harness.handler.dropped_invalid == 1


def test_trailing_bytes_after_a_transaction_are_dropped(chain: Chain) -> None:
    harness = Harness(chain)
    tx = transfer(chain, 1)
    pending = harness.handle(SyntheticCommits().next([[raw(tx) + b"\x00"]]))
    assert user_digests(pending) == []
    assert harness.handler.dropped_invalid == 1


def test_badly_signed_transactions_are_dropped(chain: Chain) -> None:
    harness = Harness(chain)
    good = transfer(chain, 0)
    flipped = bad_signature(transfer(chain, 1))
    wrong_signer = SignedTransaction.sign(transfer(chain, 2).data, chain.accounts[0])
    unsigned = SignedTransaction(transfer(chain, 1, amount=9).data, ())
    system = SignedTransaction(chain.genesis, ())
    blocks = [[raw(flipped), raw(wrong_signer)], [raw(unsigned), raw(system), raw(good)]]
    pending = harness.handle(SyntheticCommits().next(blocks))
    assert user_digests(pending) == [good.digest()]
    assert harness.handler.dropped_invalid == 4
    for tx in (flipped, wrong_signer, unsigned, system):
        assert not harness.epoch_store.is_processed(tx.digest())


async def test_an_authority_state_drops_badly_signed_transactions(chain: Chain) -> None:
    state = chain.authority_state()
    good = transfer(chain, 0)
    flipped = bad_signature(transfer(chain, 1))
    subdag = SyntheticCommits().next([[raw(flipped), raw(good)]])
    await state.handle_commit(subdag)
    recorded = state.epoch_store.commit_transactions(1)
    assert recorded is not None
    assert recorded.digests[1:] == (good.digest(),)
    assert state.handler.dropped_invalid == 1
    assert len(state.tx_manager) == 2


def test_duplicates_within_a_commit_are_dropped(chain: Chain) -> None:
    harness = Harness(chain)
    a, b = transfer(chain, 0), transfer(chain, 1)
    pending = harness.handle(SyntheticCommits().next([[raw(a), raw(b), raw(a)], [raw(b)]]))
    assert user_digests(pending) == [a.digest(), b.digest()]
    assert harness.handler.dropped_duplicates == 2


def test_duplicates_across_commits_are_dropped(chain: Chain) -> None:
    harness = Harness(chain)
    commits = SyntheticCommits()
    a, b = transfer(chain, 0), transfer(chain, 1)
    assert user_digests(harness.handle(commits.of_transactions([a]))) == [a.digest()]
    second = harness.handle(commits.of_transactions([a, b]))
    assert user_digests(second) == [b.digest()]
    assert harness.handler.dropped_duplicates == 1
    third = harness.handle(commits.of_transactions([b, a]))
    assert user_digests(third) == []
    assert harness.handler.dropped_duplicates == 3


def test_transactions_executed_in_an_earlier_epoch_are_dropped(chain: Chain) -> None:
    done = transfer(chain, 0)
    harness = Harness(chain, executed={done.digest()})
    fresh = transfer(chain, 1)
    pending = harness.handle(SyntheticCommits().of_transactions([done, fresh]))
    assert user_digests(pending) == [fresh.digest()]
    assert harness.handler.dropped_duplicates == 1


def test_commits_at_or_below_the_watermark_are_ignored(chain: Chain) -> None:
    harness = Harness(chain)
    commits = SyntheticCommits()
    first = commits.of_transactions([transfer(chain, 0)])
    second = commits.of_transactions([transfer(chain, 1)])
    harness.handle(first)
    harness.handle(second)
    recorded = [harness.epoch_store.commit_transactions(i) for i in (1, 2)]
    pending = list(harness.epoch_store.pending())
    assert len(harness.sunk) == 2
    for replay in (first, second, first):
        assert harness.handle(replay) == []
    # A handler started again over the same epoch store (a restart) ignores them too.
    restarted = harness.new_handler()
    assert restarted.handle(second) == []
    assert restarted.handle(first) == []
    assert len(harness.sunk) == 2
    assert harness.epoch_store.last_consensus_commit() == 2
    assert [harness.epoch_store.commit_transactions(i) for i in (1, 2)] == recorded
    assert list(harness.epoch_store.pending()) == pending
    assert harness.handler.dropped_duplicates == 0
    # The next commit is handled as usual.
    third = commits.of_transactions([transfer(chain, 2)])
    assert len(restarted.handle(third)) == 2


# --- shared versions -------------------------------------------------------------------


def _stake(chain: Chain, validator: int, amount: int = 100) -> SignedTransaction:
    """Validator `validator` adding to its own stake (only its account can)."""
    address = chain.validator_addresses[validator]
    coin, gas = chain.coins(address)[:2]
    return chain.sign(address, AddStake(coin, amount), gas)


def test_shared_versions_are_assigned_in_commit_order(chain: Chain) -> None:
    harness = Harness(chain)
    commits = SyntheticCommits()
    stakes = [_stake(chain, a) for a in range(3)]
    coin, gas = chain.coins(0)[2:4]
    plain = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
    pending = harness.handle(commits.next([[raw(stakes[0]), raw(plain)], [raw(stakes[1])]]))
    # Each use of the system state gets the version the previous use moves it to: its
    # Lamport version (owned inputs at 1: previous version + 1).
    versions = [p.shared_version_map() for p in pending]
    assert versions == [{}, {SYSTEM_STATE_OBJECT_ID: 1}, {}, {SYSTEM_STATE_OBJECT_ID: 2}]
    assert harness.epoch_store.next_shared_version(SYSTEM_STATE_OBJECT_ID) == 3
    # The next commit goes on from the epoch store.
    later = harness.handle(commits.of_transactions([stakes[2]]))
    assert later[1].shared_version_map() == {SYSTEM_STATE_OBJECT_ID: 3}
    assert harness.epoch_store.next_shared_version(SYSTEM_STATE_OBJECT_ID) == 4
    # Executed in order, each finds the system state at exactly its assigned version.
    for item in [*pending, *later]:
        outputs = execute_transaction(
            item.transaction, item.shared_version_map(), chain.store, 0, FEE
        )
        assert outputs.effects.status.is_success()
        chain.store.write_outputs([outputs], sync=True)
    assert chain.system_version() == 4


def test_a_mutable_use_moves_the_shared_object_to_its_lamport_version(chain: Chain) -> None:
    # Raise validator 1's coins to version 3 first, executed directly.
    validator = chain.validator_addresses[1]
    coin, gas = chain.coins(validator)[:2]
    chain.run(chain.sign(validator, TransferCoin(coin, 1, chain.addresses[0]), gas))
    coin, gas = chain.ref(coin.object_id), chain.ref(gas.object_id)
    chain.run(chain.sign(validator, TransferCoin(coin, 1, chain.addresses[0]), gas))
    coin, gas = chain.ref(coin.object_id), chain.ref(gas.object_id)
    assert coin.version == gas.version == 3
    harness = Harness(chain)
    high = chain.sign(validator, AddStake(coin, 5), gas)
    low = _stake(chain, 2)
    pending = harness.handle(SyntheticCommits().of_transactions([high, low]))
    assert pending[1].shared_version_map() == {SYSTEM_STATE_OBJECT_ID: 1}
    # `high` writes at max(3, 1) + 1 = 4, so the next user gets version 4.
    assert pending[2].shared_version_map() == {SYSTEM_STATE_OBJECT_ID: 4}
    assert harness.epoch_store.next_shared_version(SYSTEM_STATE_OBJECT_ID) == 5


def test_a_dropped_transaction_takes_no_shared_version(chain: Chain) -> None:
    harness = Harness(chain)
    bad = bad_signature(_stake(chain, 0))
    good = _stake(chain, 1)
    pending = harness.handle(SyntheticCommits().of_transactions([bad, good]))
    assert user_digests(pending) == [good.digest()]
    assert pending[1].shared_version_map() == {SYSTEM_STATE_OBJECT_ID: 1}


# --- forged copies of a real transaction ----------------------------------------------
# A transaction's digest covers its data, not its signatures: a Byzantine validator can
# put a copy of someone's transaction with a broken signature in its block.


def test_a_badly_signed_copy_does_not_shadow_the_valid_one_in_the_same_commit(
    chain: Chain,
) -> None:
    harness = Harness(chain)
    good = transfer(chain, 1)
    forged = bad_signature(good)
    assert forged.digest() == good.digest()
    pending = harness.handle(SyntheticCommits().next([[raw(forged)], [raw(good)]]))
    assert user_digests(pending) == [good.digest()]
    assert pending[1].transaction == good
    assert harness.handler.dropped_invalid == 1


def test_validators_agree_on_a_forged_copy_of_a_transaction_one_of_them_verified() -> None:
    chain_a, chain_b = Chain(), Chain()
    assert chain_a.genesis.digest() == chain_b.genesis.digest()
    received, other = chain_a.authority_state(), chain_b.authority_state()
    good = transfer(chain_a, 1)
    received.validate_transaction(good)  # a client submitted it to this validator
    forged = bad_signature(good)
    subdag = SyntheticCommits().next([[raw(forged)]])
    ordered_a = received.handler.handle(subdag)
    ordered_b = other.handler.handle(subdag)
    # Both must order the same transactions from the same commit: here, none.
    assert [p.transaction for p in ordered_a] == [p.transaction for p in ordered_b]
    assert len(ordered_a) == 1
    # The verified copy itself is accepted (without checking it again) by both.
    later = SyntheticCommits()
    later.next([])
    again = later.next([[raw(good)]])
    assert user_digests(received.handler.handle(again)) == [good.digest()]
    assert user_digests(other.handler.handle(again)) == [good.digest()]


def test_a_commit_after_a_gap_is_refused(chain: Chain) -> None:
    harness = Harness(chain)
    commits = SyntheticCommits()
    harness.handle(commits.next([]))
    commits.next([])  # commit 2 never handed over
    with pytest.raises(SomaError, match="missing"):
        harness.handle(commits.next([]))
    assert harness.epoch_store.last_consensus_commit() == 1


async def test_shared_assignments_are_kept_for_the_epoch_after_execution() -> None:
    from soma.types.genesis import DEFAULT_PARAMETERS
    from soma.types.system_state import SYSTEM_STATE_OBJECT_ID
    from tests.authority.execution.helpers import add_validator
    from tests.authority.network import LocalValidators

    net = LocalValidators(size=1, accounts=2, coins_per_account=2)
    try:
        await net.start()
        state = net.live()[0]
        coin, gas = state.owned_objects(net.addresses[0])
        stake = DEFAULT_PARAMETERS.min_validator_stake
        tx = net.sign(0, add_validator(net.addresses[0], coin, stake), gas)
        await net.order([tx])
        effects = state.get_effects(tx.digest())
        assert effects is not None and effects.status.is_success()
        assigned = state.epoch_store.assigned_shared_versions(tx.digest())
        assert assigned is not None and set(assigned) == {SYSTEM_STATE_OBJECT_ID}
        assert (
            effects.lamport_version
            == max(assigned[SYSTEM_STATE_OBJECT_ID], gas.version, coin.version) + 1
        )
        # Forgotten only at a durability point, once the outputs are synced.
        state.checkpoint()
        assert not list(state.epoch_store.pending())
    finally:
        await net.stop()
        net.close()
