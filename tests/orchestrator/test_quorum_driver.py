"""QuorumDriver against real validators: a TestNetwork (real consensus between four
in-process validators), a ValidatorService over gRPC on loopback in front of each, and
the driver's clients. Faults are injected by a proxy in front of each real client (a
refusal, a failed call, a withheld transaction, a stream message that does not
verify), so everything else (effects, batch signatures, execution) is the real thing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

import pytest

from soma.authority import service_wire as wire
from soma.authority.service import ValidatorService
from soma.authority.service_client import RemoteError, ValidatorCallError, ValidatorClient
from soma.orchestrator import quorum_driver
from soma.orchestrator.quorum_driver import QuorumDriver, QuorumTimeoutError, QuorumUnreachableError
from soma.orchestrator.validator_batcher import SubmitBatcher
from soma.types.committee import Committee
from soma.types.crypto import Ed25519Signature
from soma.types.digests import TransactionDigest
from soma.types.effects import CertifiedTransactionEffects, TransactionEffects
from soma.types.error import SomaError
from soma.types.signature_batch import BATCH_INTENT, MerkleTree, batch_leaves
from soma.types.signature_info import AuthoritySignInfo, Ed25519BatchQuorumSignInfo
from soma.types.transaction import PayCoins, SignedTransaction, TransactionData, TransferCoin
from tests.authority.network import TestNetwork
from tests.orchestrator.services import validator_services
from tests.types.conftest import account_key, address, object_ref

#: Liveness bound of every wait here (never a performance assertion).
LIVENESS_S = 60.0


class Proxy:
    """A ValidatorClient in front of a real one: records the calls and injects faults.

    - `refuse`: answer every submission with this refusal code;
    - `fail_submit`: fail every submission call (ValidatorCallError);
    - `withhold`: accept every submission without passing it on;
    - `stream_fault`: "fail" (the stream breaks at once), "fail_once" (only the first
      stream breaks), "end_once" (the first stream ends with nothing), "bad_signature"
      (the signature's bytes altered), "other_signer" (re-signed by another
      validator), "altered_effects" (an item's bytes changed under the validator's own
      signature).
    """

    def __init__(self, inner: ValidatorClient, index: int, net: TestNetwork) -> None:
        self.inner = inner
        self.address = inner.address
        self.index = index
        self.net = net
        self.submitted: list[list[TransactionDigest]] = []
        self.streams = 0
        self.tampered = 0
        self.refuse: str | None = None
        self.fail_submit = False
        self.withhold = False
        self.stream_fault: str | None = None
        #: Streams wait for this before asking the validator (None: they do not wait).
        self.stream_gate: asyncio.Event | None = None
        #: Called when a refusal is answered.
        self.on_refuse: Callable[[], None] | None = None

    def digests(self) -> list[TransactionDigest]:
        return [d for call in self.submitted for d in call]

    async def close(self) -> None:
        await self.inner.close()

    async def submit_transactions(
        self, transactions: Sequence[SignedTransaction], timeout_s: float = 10.0
    ) -> list[wire.SubmitOutcome]:
        self.submitted.append([tx.digest() for tx in transactions])
        if self.fail_submit:
            raise ValidatorCallError(f"{self.address}: injected call failure")
        if self.refuse is not None:
            if self.on_refuse is not None:
                self.on_refuse()
            refusal = wire.SubmitRefusal(self.refuse, f"injected refusal by {self.index}")
            return [wire.SubmitOutcome(tx.digest(), refusal) for tx in transactions]
        if self.withhold:
            return [wire.SubmitOutcome(tx.digest(), None) for tx in transactions]
        return await self.inner.submit_transactions(transactions, timeout_s)

    async def stream_effects(
        self, digests: Sequence[TransactionDigest], timeout_s: float = 30.0
    ) -> AsyncGenerator[wire.EffectsBatch, None]:
        self.streams += 1
        fault = self.stream_fault
        if fault == "fail" or (fault == "fail_once" and self.streams == 1):
            raise ValidatorCallError(f"{self.address}: injected stream failure")
        if fault == "end_once" and self.streams == 1:
            return
        if self.stream_gate is not None:
            await self.stream_gate.wait()
        inner = self.inner.stream_effects(digests, timeout_s)
        try:
            async for message in inner:
                yield self._tampered(message, fault)
        finally:
            await inner.aclose()

    def _tampered(self, message: wire.EffectsBatch, fault: str | None) -> wire.EffectsBatch:
        signature = message.signature
        if fault == "bad_signature":
            raw = bytearray(signature.signature)
            raw[0] ^= 1
            signature = dataclasses.replace(signature, signature=Ed25519Signature(bytes(raw)))
        elif fault == "other_signer":
            other = self.net.validators[(self.index + 1) % self.net.size].keys.authority
            leaves = batch_leaves(TransactionEffects.INTENT, [i.effects for i in message.items])
            root = MerkleTree(leaves).root
            signature = AuthoritySignInfo.create(other, signature.epoch, BATCH_INTENT, root)
        elif fault == "altered_effects":
            item = message.items[0]
            effects = TransactionEffects.from_bytes(item.effects)
            changed = dataclasses.replace(effects, gas_used=effects.gas_used + 1)
            items = (dataclasses.replace(item, effects=changed.to_bytes()), *message.items[1:])
            message = dataclasses.replace(message, items=items)
        else:
            return message
        self.tampered += 1
        return dataclasses.replace(message, signature=signature)


@dataclasses.dataclass
class Driven:
    net: TestNetwork
    services: list[ValidatorService]
    addresses: list[str]
    proxies: list[Proxy]
    driver: QuorumDriver

    def transfer(self, account: int, amount: int = 1) -> SignedTransaction:
        gas = self.net.coin_ref(self.net.genesis_coin_ids[account])
        recipient = self.net.addresses[(account + 1) % len(self.net.addresses)]
        return self.net.sign(account, TransferCoin(gas, amount, recipient), gas)

    async def execute(
        self, tx: SignedTransaction, timeout_s: float = LIVENESS_S
    ) -> CertifiedTransactionEffects:
        async with asyncio.timeout(LIVENESS_S + 5):
            return await self.driver.execute(tx, timeout_s=timeout_s)

    def check(self, certificate: CertifiedTransactionEffects, tx: SignedTransaction) -> None:
        """A valid batch certificate of `tx`'s effects, the ones the validators stored."""
        committee = self.net.committee
        certificate.verify(committee)
        assert isinstance(certificate.auth_signature, Ed25519BatchQuorumSignInfo)
        assert certificate.data.transaction_digest == tx.digest()
        assert certificate.data.status.is_success()
        for state in self.net.live():
            stored = state.get_effects(tx.digest())
            if stored is not None:
                assert stored == certificate.data
        CertifiedTransactionEffects.from_bytes(certificate.to_bytes()).verify(committee)


async def _serve(accounts: int) -> AsyncIterator[Driven]:
    net = TestNetwork(size=4, accounts=accounts)
    proxies: list[Proxy] = []
    driver: QuorumDriver | None = None
    try:
        await net.start()
        async with validator_services(net) as (services, addresses):
            try:
                for v in net.validators:
                    proxies.append(Proxy(_client(net, addresses, v.index), v.index, net))
                clients = {m.name: proxies[i] for i, m in enumerate(net.committee.members)}
                driver = QuorumDriver(net.committee, clients)  # type: ignore[arg-type]
                yield Driven(net, services, addresses, proxies, driver)
                failures = net.failures()
            finally:
                if driver is not None:
                    await driver.close()
                else:
                    for proxy in proxies:
                        await proxy.close()
    finally:
        await net.stop()
        net.close()
    assert failures == []


def _client(net: TestNetwork, addresses: list[str], index: int) -> ValidatorClient:
    return ValidatorClient(addresses[index], net.committee.members[index].tls_certificate)


@pytest.fixture
async def driven() -> AsyncIterator[Driven]:
    async for value in _serve(accounts=18):
        yield value


def signers(certificate: CertifiedTransactionEffects) -> list[int]:
    return certificate.auth_signature.signer_indices()


# --- certificates ------------------------------------------------------------------------------


async def test_a_certificate_forms_from_streamed_effects(driven: Driven) -> None:
    """With plain ValidatorClients (no proxy): the production path."""
    net = driven.net
    clients = {
        m.name: _client(net, driven.addresses, i) for i, m in enumerate(net.committee.members)
    }
    driver = QuorumDriver(net.committee, clients)
    try:
        tx = driven.transfer(0, amount=1234)
        async with asyncio.timeout(LIVENESS_S):
            certificate = await driver.execute(tx, timeout_s=LIVENESS_S)
        driven.check(certificate, tx)
        assert len(signers(certificate)) >= 3
        # The coin it left pays for the next transfer.
        gas = certificate.data.gas_object()
        assert gas is not None
        follow_up = net.sign(0, TransferCoin(gas, 1, net.addresses[5]), gas)
        async with asyncio.timeout(LIVENESS_S):
            second = await driver.execute(follow_up, timeout_s=LIVENESS_S)
        driven.check(second, follow_up)
        assert tx.digest() in second.data.dependencies
    finally:
        await driver.close()


async def test_a_refusal_moves_submission_to_the_next_validator(driven: Driven) -> None:
    p = driven.proxies
    p[0].refuse = "OBJECT_VERSION_UNAVAILABLE"
    tx = driven.transfer(1)
    driven.check(await driven.execute(tx), tx)
    assert p[0].digests() == [tx.digest()]
    assert p[1].digests() == [tx.digest()]
    assert p[2].digests() == p[3].digests() == []


async def test_different_refusal_codes_are_not_final(driven: Driven) -> None:
    p = driven.proxies
    p[0].refuse = "OBJECT_VERSION_UNAVAILABLE"
    p[1].refuse = "CONSENSUS_OVERLOADED"
    tx = driven.transfer(2)
    driven.check(await driven.execute(tx), tx)
    assert [len(x.digests()) for x in p] == [1, 1, 1, 0]


async def test_a_refusal_from_f_plus_1_stake_is_final(driven: Driven) -> None:
    """Two of four refuse with the same code: refused, though the others would accept."""
    p = driven.proxies
    p[0].refuse = p[1].refuse = "OBJECT_VERSION_UNAVAILABLE"
    tx = driven.transfer(3)
    with pytest.raises(RemoteError) as raised:
        await driven.execute(tx)
    assert raised.value.remote_code == "OBJECT_VERSION_UNAVAILABLE"
    assert "injected refusal" in raised.value.message
    assert p[2].digests() == p[3].digests() == []


async def test_a_refusal_by_every_validator_is_final_after_f_plus_1(driven: Driven) -> None:
    """A transaction signed by someone else than its sender: every real validator
    refuses it with the same code, and the driver stops after the first two."""
    net = driven.net
    tx = SignedTransaction.sign(driven.transfer(4).data, net.accounts[9])
    with pytest.raises(RemoteError) as raised:
        await driven.execute(tx)
    assert raised.value.remote_code == "SIGNER_MISMATCH"
    assert [len(x.digests()) for x in driven.proxies] == [1, 1, 0, 0]


async def test_refusals_after_an_acceptance_are_not_final(
    driven: Driven, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validator 0 accepts (and passes the transaction on to consensus); no certificate
    can form yet (effects are held back), so after RESUBMIT_AFTER_S validators 1 and 2
    are asked too, and refuse for the same transient reason. The transaction is in
    consensus and executes: the driver should still certify it, not report a refusal."""
    monkeypatch.setattr(quorum_driver, "RESUBMIT_AFTER_S", 0.05)
    p = driven.proxies
    gate = asyncio.Event()
    for proxy in p:
        proxy.stream_gate = gate
    p[1].refuse = p[2].refuse = "CONSENSUS_OVERLOADED"
    # Effects flow once the second refusal is answered (the driver has both by then).
    p[2].on_refuse = gate.set
    tx = driven.transfer(15)
    try:
        certificate = await driven.execute(tx)
    finally:
        gate.set()
        await driven.net.wait_all_executed(tx.digest())  # it executes either way
    driven.check(certificate, tx)


async def test_refusals_for_different_reasons_everywhere_are_unreachable(
    driven: Driven,
) -> None:
    codes = ["CODE_A", "CODE_B", "CODE_C", "CODE_D"]
    for proxy, code in zip(driven.proxies, codes, strict=True):
        proxy.refuse = code
    with pytest.raises(QuorumUnreachableError) as raised:
        await driven.execute(driven.transfer(5))
    for code in codes:
        assert code in raised.value.message
    assert [len(x.digests()) for x in driven.proxies] == [1, 1, 1, 1]


async def test_a_validator_whose_calls_fail_is_skipped(driven: Driven) -> None:
    """Validator 0's service is down: its submission and its stream fail, the next
    validator takes the transaction and the other three certify it."""
    await driven.services[0].stop(0)
    tx = driven.transfer(6)
    certificate = await driven.execute(tx)
    driven.check(certificate, tx)
    assert signers(certificate) == [1, 2, 3]
    assert driven.proxies[0].digests() == [tx.digest()]
    assert driven.proxies[1].digests() == [tx.digest()]


async def test_a_failed_submit_call_is_skipped(driven: Driven) -> None:
    p = driven.proxies
    p[0].fail_submit = True
    tx = driven.transfer(7)
    driven.check(await driven.execute(tx), tx)
    assert p[0].digests() == p[1].digests() == [tx.digest()]
    assert p[2].digests() == p[3].digests() == []


@pytest.mark.parametrize("fault", ["bad_signature", "other_signer", "altered_effects"])
async def test_a_stream_message_that_does_not_verify_does_not_count(
    driven: Driven, fault: str
) -> None:
    driven.proxies[3].stream_fault = fault
    tx = driven.transfer(8)
    certificate = await driven.execute(tx)
    driven.check(certificate, tx)
    assert signers(certificate) == [0, 1, 2]


@pytest.mark.parametrize("fault", ["bad_signature", "other_signer", "altered_effects"])
async def test_a_bad_stream_message_cannot_complete_a_quorum(driven: Driven, fault: str) -> None:
    """Validator 2's stream breaks, validator 3's messages do not verify: had 3's
    counted, 0, 1 and 3 would certify; they do not, so no quorum can form."""
    driven.proxies[2].stream_fault = "fail"
    driven.proxies[3].stream_fault = fault
    tx = driven.transfer(9)
    with pytest.raises(QuorumUnreachableError):
        await driven.execute(tx)
    # The transaction did execute everywhere; validator 3's copy was seen and refused.
    await driven.net.wait_all_executed(tx.digest())
    assert driven.proxies[3].tampered >= 1


async def test_two_stream_failures_of_four_make_the_quorum_unreachable(driven: Driven) -> None:
    driven.proxies[2].stream_fault = driven.proxies[3].stream_fault = "fail"
    with pytest.raises(QuorumUnreachableError) as raised:
        await driven.execute(driven.transfer(10))
    assert "2 of 4 stake" in raised.value.message


async def test_a_stream_that_ends_early_is_opened_again(driven: Driven) -> None:
    """Validator 0's first stream ends with nothing (as at its timeout) and validator
    3's breaks: the certificate needs 0's effects, from a second stream."""
    driven.proxies[0].stream_fault = "end_once"
    driven.proxies[3].stream_fault = "fail"
    tx = driven.transfer(11)
    certificate = await driven.execute(tx)
    driven.check(certificate, tx)
    assert signers(certificate) == [0, 1, 2]
    assert driven.proxies[0].streams >= 2


async def test_no_certificate_in_time_is_a_timeout(driven: Driven) -> None:
    """Every validator accepts and withholds the transaction: nothing executes."""
    for proxy in driven.proxies:
        proxy.withhold = True
    tx = driven.transfer(12)
    with pytest.raises(QuorumTimeoutError) as raised:
        await driven.execute(tx, timeout_s=1.0)
    assert raised.value.code == "EFFECTS_TIMEOUT"
    assert driven.proxies[0].digests() == [tx.digest()]
    for state in driven.net.live():
        assert state.get_effects(tx.digest()) is None


async def test_a_withholding_validator_is_followed_by_the_next(
    driven: Driven, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quorum_driver, "RESUBMIT_AFTER_S", 0.3)
    driven.proxies[0].withhold = True
    tx = driven.transfer(13)
    driven.check(await driven.execute(tx), tx)
    assert driven.proxies[0].digests() == [tx.digest()]
    assert driven.proxies[1].digests() == [tx.digest()]


# --- batching and rotation ---------------------------------------------------------------------


async def test_many_concurrent_executes_are_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quorum_driver, "RESUBMIT_AFTER_S", 10 * LIVENESS_S)
    count = 60
    async for driven in _serve(accounts=count):
        txs = [driven.transfer(account) for account in range(count)]
        async with asyncio.timeout(LIVENESS_S):
            certificates = await asyncio.gather(
                *(driven.driver.execute(tx, timeout_s=LIVENESS_S) for tx in txs)
            )
        for tx, certificate in zip(txs, certificates, strict=True):
            driven.check(certificate, tx)
        calls = [call for proxy in driven.proxies for call in proxy.submitted]
        submitted = [d for call in calls for d in call]
        assert sorted(submitted) == sorted(tx.digest() for tx in txs)  # each once
        # Far fewer calls than transactions: one per validator in practice.
        assert len(calls) <= 2 * driven.net.size
        assert all(len(proxy.submitted) >= 1 for proxy in driven.proxies)
        assert sum(proxy.streams for proxy in driven.proxies) <= 2 * driven.net.size


async def test_rotation_spreads_submissions(driven: Driven) -> None:
    txs = [driven.transfer(account) for account in range(8)]
    for tx in txs:
        driven.check(await driven.execute(tx), tx)
    for index, proxy in enumerate(driven.proxies):
        assert proxy.digests() == [txs[index].digest(), txs[index + 4].digest()]


class Recorder:
    """A client that accepts everything and records each SubmitTransactions call."""

    address = "recorder"

    def __init__(self) -> None:
        self.calls: list[list[SignedTransaction]] = []

    async def submit_transactions(
        self, transactions: Sequence[SignedTransaction], timeout_s: float = 10.0
    ) -> list[wire.SubmitOutcome]:
        self.calls.append(list(transactions))
        return [wire.SubmitOutcome(tx.digest(), None) for tx in transactions]


def payment(account: int, recipients: int) -> SignedTransaction:
    """A (large) payment to `recipients` addresses: only its size matters here."""
    key = account_key(account)
    gas = object_ref(account)
    to = tuple(address(i % 50) for i in range(recipients))
    data = TransactionData(PayCoins((gas,), (1,) * recipients, to), key.address, gas, 10**6, None)
    return SignedTransaction.sign(data, key)


async def test_submit_batches_are_cut_by_count_and_by_bytes() -> None:
    small = [payment(i, 1) for i in range(25)]
    recorder = Recorder()
    batcher = SubmitBatcher(recorder, max_batch=10)  # type: ignore[arg-type]
    try:
        futures = [batcher.submit(tx) for tx in small]
        async with asyncio.timeout(LIVENESS_S):
            outcomes = await asyncio.gather(*futures)
    finally:
        await batcher.close()
    assert [o.digest for o in outcomes] == [tx.digest() for tx in small]
    assert [len(call) for call in recorder.calls] == [10, 10, 5]
    assert [tx for call in recorder.calls for tx in call] == small

    # About 80 kB each: 60 of them are more than MAX_BATCH_BYTES together.
    large = [payment(i, 2_000) for i in range(60)]
    assert sum(len(tx.to_bytes()) for tx in large) > wire.MAX_BATCH_BYTES
    # One alone is larger than MAX_BATCH_BYTES: it still goes, in a call of its own.
    huge = payment(99, wire.MAX_BATCH_BYTES // 40 + 1000)
    assert len(huge.to_bytes()) > wire.MAX_BATCH_BYTES
    everything = [*large, huge, *large[:3]]
    recorder = Recorder()
    batcher = SubmitBatcher(recorder)  # type: ignore[arg-type]
    try:
        futures = [batcher.submit(tx) for tx in everything]
        async with asyncio.timeout(LIVENESS_S):
            await asyncio.gather(*futures)
    finally:
        await batcher.close()
    assert [tx for call in recorder.calls for tx in call] == everything
    assert len(recorder.calls) >= 3
    assert [huge] in recorder.calls
    for call in recorder.calls:
        if call != [huge]:
            assert sum(len(tx.to_bytes()) for tx in call) <= wire.MAX_BATCH_BYTES


# --- construction and close --------------------------------------------------------------------


async def test_a_driver_needs_a_client_for_every_validator(driven: Driven) -> None:
    members = driven.net.committee.members
    partial = {m.name: driven.proxies[i] for i, m in enumerate(members[:3])}
    with pytest.raises(SomaError, match="no client"):
        QuorumDriver(driven.net.committee, partial)  # type: ignore[arg-type]


async def test_a_closed_driver_refuses_work(driven: Driven) -> None:
    await driven.driver.close()
    with pytest.raises(ValidatorCallError):
        await driven.execute(driven.transfer(14))


async def test_a_lying_acceptance_does_not_hide_a_stateless_refusal(
    driven: Driven, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validator 0 (first in the rotation) says it accepted a transaction that is not
    signed by its sender, and withholds it; the honest ones refuse it for a reason every
    handler drops it for too. The refusal is final at f+1 stake: no timeout (and no
    refusal grace: only the wait before asking the next validators is shortened)."""
    monkeypatch.setattr(quorum_driver, "RESUBMIT_AFTER_S", 0.05)
    driven.proxies[0].withhold = True
    tx = driven.transfer(16)
    forged = SignedTransaction.sign(tx.data, account_key(99))
    with pytest.raises(RemoteError) as raised:
        await driven.execute(forged, timeout_s=LIVENESS_S)
    assert raised.value.remote_code in quorum_driver.STATELESS_REFUSALS


async def test_a_quorum_refusal_after_an_acceptance_is_reported_after_a_grace(
    driven: Driven, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validator 0 accepts and withholds; the other three refuse for one (stateful)
    reason. Once all were asked and a further interval passed without effects, the
    refusal is reported instead of waiting out the whole timeout."""
    monkeypatch.setattr(quorum_driver, "RESUBMIT_AFTER_S", 0.05)
    monkeypatch.setattr(quorum_driver, "REFUSAL_GRACE_S", 0.05)
    driven.proxies[0].withhold = True
    for proxy in driven.proxies[1:]:
        proxy.refuse = "CONSENSUS_OVERLOADED"
    with pytest.raises(RemoteError) as raised:
        await driven.execute(driven.transfer(17), timeout_s=LIVENESS_S)
    assert raised.value.remote_code == "CONSENSUS_OVERLOADED"
    assert "may still execute" in raised.value.message


async def test_a_stream_that_breaks_once_is_watched_again(
    driven: Driven, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two validators' first streams break (restarting, say): each is watched again
    once after a pause, so with the other two a certificate still forms."""
    monkeypatch.setattr(quorum_driver, "WATCH_RETRY_S", 0.05)
    driven.proxies[1].stream_fault = "fail_once"
    driven.proxies[2].stream_fault = "fail_once"
    tx = driven.transfer(0)
    certificate = await driven.execute(tx)
    driven.check(certificate, tx)
    assert driven.proxies[1].streams >= 2 and driven.proxies[2].streams >= 2


async def test_closing_the_driver_fails_executions_in_flight(driven: Driven) -> None:
    for proxy in driven.proxies:
        proxy.withhold = True
    execution = asyncio.ensure_future(driven.execute(driven.transfer(1)))
    while not driven.proxies[0].submitted:
        await asyncio.sleep(0.01)
    await driven.driver.close()
    with pytest.raises(QuorumUnreachableError):
        async with asyncio.timeout(5):
            await execution


# --- epoch changes -------------------------------------------------------------------------------


def _refuse_then_accept(driven: Driven, code: str, refusals: int) -> asyncio.Event:
    """Every validator refuses with `code` until `refusals` refusals were answered, then
    accepts; the event is set then."""
    p = driven.proxies
    done = asyncio.Event()
    count = 0

    def refused() -> None:
        nonlocal count
        count += 1
        if count >= refusals:
            for proxy in p:
                proxy.refuse = None
            done.set()

    for proxy in p:
        proxy.refuse = code
        proxy.on_refuse = refused
    return done


@pytest.mark.parametrize("code", ["EPOCH_ENDING", "EPOCH_ENDED"])
async def test_refusals_for_the_epoch_end_are_never_final(driven: Driven, code: str) -> None:
    """Every validator turns the transaction away for the epoch's end (f+1 stake and
    more): it is submitted again until one takes it."""
    _refuse_then_accept(driven, code, refusals=6)
    tx = driven.transfer(4)
    driven.check(await driven.execute(tx), tx)
    assert sum(len(p.digests()) for p in driven.proxies) >= 7


async def test_the_next_committee_gets_what_is_in_flight_at_once(
    driven: Driven, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused for the epoch's end everywhere, the transaction waits for the next
    committee; `reconfigure` submits it again at once (the pause before trying the same
    committee again is made longer than the test's bound), and effects signed in the
    epoch before still certify."""
    monkeypatch.setattr(quorum_driver, "EPOCH_RETRY_S", 10 * LIVENESS_S)
    refused = _refuse_then_accept(driven, "EPOCH_ENDED", refusals=4)
    tx = driven.transfer(5)
    executing = asyncio.ensure_future(driven.execute(tx))
    async with asyncio.timeout(LIVENESS_S):
        await refused.wait()
    assert not executing.done()
    committee = driven.net.committee
    driven.driver.reconfigure(Committee.new(committee.epoch + 1, committee.members))
    assert driven.driver.committee.epoch == committee.epoch + 1
    certificate = await executing
    driven.check(certificate, tx)  # certified by the committee of the epoch it ran in
    assert certificate.auth_signature.epoch == committee.epoch
