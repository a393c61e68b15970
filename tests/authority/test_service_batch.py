"""The batched validator calls over real gRPC on loopback: SubmitTransactions (one
outcome per entry, in order) and StreamEffects (batch-signed effects as they become
durable), served by ValidatorService in front of the validators of a TestNetwork (real
consensus between them)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest

from soma.authority import service_wire as wire
from soma.authority import state as state_module
from soma.authority.service import ValidatorService
from soma.authority.service_client import RemoteError, ValidatorClient
from soma.authority.state import AuthorityState
from soma.consensus.network import tls
from soma.types.base import ObjectID
from soma.types.crypto import UserSignature
from soma.types.digests import ObjectDigest, TransactionDigest
from soma.types.effects import CertifiedTransactionEffects, TransactionEffects
from soma.types.error import InvalidSignatureError
from soma.types.object import ObjectRef
from soma.types.signature_batch import BATCH_INTENT, MerkleTree, batch_leaves
from soma.types.signature_info import Ed25519BatchQuorumSignInfo
from soma.types.tls import tls_identity
from soma.types.transaction import SignedTransaction, TransferCoin
from tests.authority.network import FEE, GAS_BUDGET, TestNetwork

#: Liveness bound of every wait here (never a performance assertion).
LIVENESS_S = 60.0


@dataclasses.dataclass
class Served:
    """A TestNetwork with a ValidatorService in front of every validator."""

    net: TestNetwork
    services: list[ValidatorService]
    clients: list[ValidatorClient]
    addresses: list[str]

    def state(self, index: int = 0) -> AuthorityState:
        state = self.net.validators[index].state
        assert state is not None
        return state

    def gas(self, account: int) -> ObjectRef:
        return self.net.coin_ref(self.net.genesis_coin_ids[account])

    def transfer(
        self, account: int, amount: int = 1, budget: int = GAS_BUDGET
    ) -> SignedTransaction:
        gas = self.gas(account)
        recipient = self.net.addresses[(account + 1) % len(self.net.addresses)]
        return self.net.sign(account, TransferCoin(gas, amount, recipient), gas, budget)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    net = TestNetwork(size=4, accounts=16)
    services: list[ValidatorService] = []
    clients: list[ValidatorClient] = []
    addresses: list[str] = []
    try:
        await net.start()
        for v in net.validators:
            service = ValidatorService(lambda v=v: _state_of(v.state), tls_identity(v.keys.network))
            port = service.bind("127.0.0.1:0")
            services.append(service)
            await service.start()
            addresses.append(f"127.0.0.1:{port}")
            clients.append(
                ValidatorClient(addresses[-1], net.committee.members[v.index].tls_certificate)
            )
        yield Served(net, services, clients, addresses)
    finally:
        for client in clients:
            await client.close()
        for service in services:
            await service.stop(0)
        await net.stop()
        net.close()


def _state_of(state: AuthorityState | None) -> AuthorityState:
    assert state is not None
    return state


async def collect(
    client: ValidatorClient, digests: Sequence[TransactionDigest], timeout_s: float
) -> list[wire.EffectsBatch]:
    async with asyncio.timeout(LIVENESS_S):
        return [message async for message in client.stream_effects(digests, timeout_s)]


def check_message(served: Served, validator: int, message: wire.EffectsBatch) -> None:
    """The message is signed by `validator`, over the Merkle root of its items' effects
    bytes in order, in the epoch they were executed in; each item is its digest's."""
    assert message.items
    signature = message.signature
    assert signature.authority == served.net.committee.members[validator].name
    leaves = batch_leaves(TransactionEffects.INTENT, [item.effects for item in message.items])
    signature.verify(served.net.committee, BATCH_INTENT, MerkleTree(leaves).root)
    for item in message.items:
        effects = TransactionEffects.from_bytes(item.effects)
        assert effects.transaction_digest == item.digest
        assert effects.executed_epoch == signature.epoch
        stored = served.state(validator).get_effects(item.digest)
        assert stored is not None and stored.to_bytes() == item.effects


def streamed_digests(messages: Sequence[wire.EffectsBatch]) -> list[TransactionDigest]:
    return [item.digest for message in messages for item in message.items]


async def executed(served: Served, tx: SignedTransaction) -> TransactionDigest:
    await served.net.execute(tx, via=[0])
    await served.net.wait_all_executed(tx.digest())
    return tx.digest()


def raw_channel(served: Served, index: int = 0) -> grpc.aio.Channel:
    """A bare gRPC channel to validator `index`'s service (TLS, pinned to its key)."""
    certificate = served.net.committee.members[index].tls_certificate
    return tls.dial(served.addresses[index], certificate, [])


# --- SubmitTransactions ------------------------------------------------------------------------


async def test_a_mixed_batch_gets_one_outcome_per_entry_in_order(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entries whose input may still appear wait this long before they are refused.
    monkeypatch.setattr(state_module, "INPUT_WAIT_S", 1.0)
    net = served.net
    valid_a = served.transfer(0)
    valid_b = served.transfer(4)
    wrong_signer = SignedTransaction.sign(served.transfer(1).data, net.accounts[2])
    tampered_sig = bytearray(served.transfer(2).tx_signatures[0])
    tampered_sig[10] ^= 0x40
    tampered = SignedTransaction(served.transfer(2).data, (UserSignature(bytes(tampered_sig)),))
    gas = served.gas(3)
    ahead = dataclasses.replace(gas, version=gas.version + 10)
    future_version = net.sign(3, TransferCoin(ahead, 1, net.addresses[0]), ahead)
    cheap = served.transfer(5, budget=FEE - 1)
    missing = ObjectRef(ObjectID.from_int(987_654), 1, ObjectDigest(bytes(32)))
    unknown_gas = net.sign(6, TransferCoin(missing, 1, net.addresses[0]), missing)
    entries: list[tuple[bytes, TransactionDigest, str | None]] = [
        (valid_a.to_bytes(), valid_a.digest(), None),
        (b"garbage", TransactionDigest.zero(), "BCS_UNKNOWN_ENUM_TAG"),
        (wrong_signer.to_bytes(), wrong_signer.digest(), "SIGNER_MISMATCH"),
        (tampered.to_bytes(), tampered.digest(), "INVALID_SIGNATURE"),
        (future_version.to_bytes(), future_version.digest(), "OBJECT_VERSION_UNAVAILABLE"),
        (valid_b.to_bytes(), valid_b.digest(), None),
        (cheap.to_bytes(), cheap.digest(), "INSUFFICIENT_GAS"),
        (b"", TransactionDigest.zero(), "BCS_UNEXPECTED_END"),
        (valid_a.to_bytes(), valid_a.digest(), None),  # the same again: accepted once more
        (unknown_gas.to_bytes(), unknown_gas.digest(), "OBJECT_NOT_FOUND"),
        (valid_a.to_bytes() + b"\x00", TransactionDigest.zero(), "BCS_TRAILING_BYTES"),
    ]
    channel = raw_channel(served)
    try:
        call = channel.unary_unary(wire.SUBMIT_BATCH)
        request = wire.SubmitTransactionsRequest(tuple(raw for raw, _, _ in entries))
        async with asyncio.timeout(LIVENESS_S):
            raw = await call(request.to_bytes(), timeout=LIVENESS_S)
    finally:
        await channel.close()
    outcomes = wire.SubmitTransactionsResponse.from_bytes(raw).outcomes
    assert len(outcomes) == len(entries)
    for position, (outcome, (_, digest, code)) in enumerate(zip(outcomes, entries, strict=True)):
        assert outcome.digest == digest, position
        if code is None:
            assert outcome.refusal is None, (position, outcome.refusal)
        else:
            assert outcome.refusal is not None, position
            assert outcome.refusal.code == code, (position, outcome.refusal)
            assert outcome.refusal.message
    # The node keeps serving: the accepted transactions certify, the next call works.
    for tx in (valid_a, valid_b):
        certificate = await net.certificate(tx.digest())
        assert certificate.data.status.is_success()
    later = served.transfer(7)
    [outcome] = await served.clients[0].submit_transactions([later])
    assert outcome == wire.SubmitOutcome(later.digest(), None)
    assert (await net.certificate(later.digest())).data.status.is_success()
    assert (await served.clients[0].get_status()).latest_commit > 0
    assert not net.failures()


async def test_submit_transactions_through_the_client(served: Served) -> None:
    client = served.clients[1]
    txs = [served.transfer(account) for account in (8, 9, 10)]
    outcomes = await client.submit_transactions(txs)
    assert outcomes == [wire.SubmitOutcome(tx.digest(), None) for tx in txs]
    for tx in txs:
        await served.net.certificate(tx.digest())
    # Executed already (its gas spent since): still accepted, as a no-op.
    again = await client.submit_transactions(txs[:1])
    assert again == [wire.SubmitOutcome(txs[0].digest(), None)]
    # A refusal comes back as an outcome, not as an error of the call.
    [refused] = await client.submit_transactions([served.transfer(11, budget=FEE - 1)])
    assert refused.refusal is not None and refused.refusal.code == "INSUFFICIENT_GAS"
    assert await client.submit_transactions([]) == []


async def test_more_than_max_batch_entries_are_refused(served: Served) -> None:
    too_many = wire.SubmitTransactionsRequest((b"",) * (wire.MAX_BATCH + 1))
    channel = raw_channel(served)
    try:
        call = channel.unary_unary(wire.SUBMIT_BATCH)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(too_many.to_bytes(), timeout=LIVENESS_S)
        assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert (raised.value.details() or "").startswith("[BATCH_TOO_LARGE] ")
    finally:
        await channel.close()
    client = served.clients[0]
    with pytest.raises(RemoteError) as remote:
        await client._call(wire.SUBMIT_BATCH, too_many, wire.SubmitTransactionsResponse, LIVENESS_S)
    assert remote.value.remote_code == "BATCH_TOO_LARGE"
    # Exactly MAX_BATCH entries are taken, each refused on its own.
    full = wire.SubmitTransactionsRequest((b"",) * wire.MAX_BATCH)
    response = await client._call(
        wire.SUBMIT_BATCH, full, wire.SubmitTransactionsResponse, LIVENESS_S
    )
    assert len(response.outcomes) == wire.MAX_BATCH
    assert all(
        o.digest == TransactionDigest.zero()
        and o.refusal is not None
        and o.refusal.code == "BCS_UNEXPECTED_END"
        for o in response.outcomes
    )
    assert (await client.get_status()).latest_commit >= 0


async def test_a_full_batch_of_transfers_is_taken(served: Served) -> None:
    """MAX_BATCH transfers (well over 1 MiB on the wire) in one call, each answered.
    Their budget is below the fee, so each is refused on its own without loading
    consensus with thousands of transfers."""
    gas = served.gas(12)
    recipient = served.net.addresses[0]
    txs = [
        served.net.sign(12, TransferCoin(gas, amount, recipient), gas, budget=FEE - 1)
        for amount in range(1, wire.MAX_BATCH + 1)
    ]
    request = wire.SubmitTransactionsRequest(tuple(tx.to_bytes() for tx in txs))
    assert len(request.to_bytes()) > 1024 * 1024
    assert len(request.to_bytes()) <= wire.MAX_BATCH_BYTES
    outcomes = await served.clients[0].submit_transactions(txs, timeout_s=LIVENESS_S)
    assert [o.digest for o in outcomes] == [tx.digest() for tx in txs]
    assert all(o.refusal is not None and o.refusal.code == "INSUFFICIENT_GAS" for o in outcomes)


# --- StreamEffects -----------------------------------------------------------------------------


async def test_effects_already_executed_come_at_once(served: Served) -> None:
    digests = [await executed(served, served.transfer(account)) for account in (0, 1)]
    # The stream ends as soon as both were sent, far before its own timeout.
    messages = await collect(served.clients[0], digests, timeout_s=LIVENESS_S * 10)
    assert sorted(streamed_digests(messages)) == sorted(digests)
    for message in messages:
        check_message(served, 0, message)


async def test_effects_come_as_they_execute(served: Served) -> None:
    client = served.clients[0]
    first = await executed(served, served.transfer(0))
    later = [served.transfer(account) for account in (1, 2, 3)]
    stream = client.stream_effects([first, *(tx.digest() for tx in later)], LIVENESS_S)
    try:
        async with asyncio.timeout(LIVENESS_S):
            opening = await anext(stream)
            # Only the executed one can be in it: the others were not even submitted.
            assert streamed_digests([opening]) == [first]
            check_message(served, 0, opening)
            outcomes = await served.clients[2].submit_transactions(later)
            assert all(o.refusal is None for o in outcomes)
            rest = [message async for message in stream]
    finally:
        await stream.aclose()
    assert sorted(streamed_digests(rest)) == sorted(tx.digest() for tx in later)
    for message in rest:
        check_message(served, 0, message)


async def test_each_message_is_signed_over_its_items_in_order(served: Served) -> None:
    txs = [served.transfer(account) for account in (4, 5, 6, 7)]
    await served.clients[0].submit_transactions(txs)
    for tx in txs:
        await served.net.wait_all_executed(tx.digest())
    messages = await collect(served.clients[3], [tx.digest() for tx in txs], LIVENESS_S)
    assert sorted(streamed_digests(messages)) == sorted(tx.digest() for tx in txs)
    [message] = messages  # all durable before the call: one message, one signature
    check_message(served, 3, message)
    effects = [item.effects for item in message.items]
    reordered = MerkleTree(
        batch_leaves(TransactionEffects.INTENT, [effects[1], effects[0], *effects[2:]])
    ).root
    with pytest.raises(InvalidSignatureError):
        message.signature.verify(served.net.committee, BATCH_INTENT, reordered)


async def test_streamed_effects_of_three_validators_make_a_certificate(served: Served) -> None:
    tx = served.transfer(8)
    digest = await executed(served, tx)
    others = [await executed(served, served.transfer(account)) for account in (9, 10)]
    parts = []
    for validator, asked in [(0, [digest]), (1, [others[0], digest]), (3, [*others, digest])]:
        messages = await collect(served.clients[validator], asked, LIVENESS_S)
        for message in messages:
            check_message(served, validator, message)
            leaves = batch_leaves(TransactionEffects.INTENT, [i.effects for i in message.items])
            for position, item in enumerate(message.items):
                if item.digest == digest:
                    parts.append((message.signature, MerkleTree(leaves).proof(position), item))
    assert len(parts) == 3
    assert len({item.effects for _, _, item in parts}) == 1
    committee = served.net.committee
    quorum = Ed25519BatchQuorumSignInfo.from_batch_signatures(
        committee, [(signature, proof) for signature, proof, _ in parts]
    )
    effects = TransactionEffects.from_bytes(parts[0][2].effects)
    certificate = CertifiedTransactionEffects(effects, quorum)
    certificate.verify(committee)
    assert quorum.signer_indices() == [0, 1, 3]
    CertifiedTransactionEffects.from_bytes(certificate.to_bytes()).verify(committee)


async def test_the_stream_ends_at_the_timeout_for_digests_never_executed(
    served: Served,
) -> None:
    never = TransactionDigest(b"\x5a" * 32)
    assert await collect(served.clients[0], [never], timeout_s=0.5) == []
    done = await executed(served, served.transfer(11))
    messages = await collect(served.clients[0], [never, done], timeout_s=0.5)
    assert streamed_digests(messages) == [done]
    for message in messages:
        check_message(served, 0, message)
    # Nothing asked, nothing sent: the stream ends at once.
    assert await collect(served.clients[0], [], timeout_s=LIVENESS_S * 10) == []


async def test_duplicate_digests_are_sent_once(served: Served) -> None:
    done = await executed(served, served.transfer(12))
    messages = await collect(served.clients[0], [done, done, done], LIVENESS_S)
    assert streamed_digests(messages) == [done]
    # Duplicates are dropped before the size limit is applied.
    messages = await collect(served.clients[0], [done] * (wire.MAX_BATCH + 1), LIVENESS_S)
    assert streamed_digests(messages) == [done]
    # A digest asked for three times before it executes is sent once too.
    later = served.transfer(13)
    stream = served.clients[1].stream_effects([later.digest()] * 3, LIVENESS_S)
    waiting = asyncio.ensure_future(anext(stream))
    try:
        async with asyncio.timeout(LIVENESS_S):
            await served.clients[0].submit_transactions([later])
            first = await waiting
            rest = [message async for message in stream]
    finally:
        waiting.cancel()
        await asyncio.wait([waiting])
        await stream.aclose()
    assert streamed_digests([first, *rest]) == [later.digest()]
    check_message(served, 1, first)


async def test_more_than_max_batch_digests_are_refused(served: Served) -> None:
    digests = [TransactionDigest(i.to_bytes(32, "little")) for i in range(wire.MAX_BATCH + 1)]
    with pytest.raises(RemoteError) as raised:
        await collect(served.clients[0], digests, timeout_s=1.0)
    assert raised.value.remote_code == "BATCH_TOO_LARGE"


async def test_garbage_requests_are_invalid_arguments(served: Served) -> None:
    valid = wire.StreamEffectsRequest((TransactionDigest.zero(),), 100).to_bytes()
    channel = raw_channel(served)
    try:
        for garbage in (b"\xff\xff\xff\xff\xff\xff", valid + b"\x00", valid[:-1]):
            call = channel.unary_stream(wire.STREAM_EFFECTS)(garbage, timeout=LIVENESS_S)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                async for _ in call:
                    raise AssertionError("garbage was answered")
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        submit = channel.unary_unary(wire.SUBMIT_BATCH)
        for garbage in (b"\xff\xff\xff\xff\xff\xff", b"\x01"):
            with pytest.raises(grpc.aio.AioRpcError) as raised_unary:
                await submit(garbage, timeout=LIVENESS_S)
            assert raised_unary.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await channel.close()
    # Still serving, and the client reports such failures as call errors.
    assert (await served.clients[0].get_status()).latest_commit >= 0
    done = await executed(served, served.transfer(14))
    assert streamed_digests(await collect(served.clients[0], [done], LIVENESS_S)) == [done]


def test_effects_messages_are_cut_at_the_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many effects became durable together, no stream message exceeds the
    budget (beyond one item), and each carries its own batch signature over its items."""
    from soma.authority import service as service_module
    from soma.consensus.local_committee import generate_committee
    from soma.types.transaction import SplitCoin
    from tests.authority.helpers import Chain

    chain = Chain(coins_per_account=4)
    effects = []
    for account in range(3):
        coin, gas = chain.coins(account)[:2]
        effects.append(chain.run(chain.sign(account, SplitCoin(coin, (1, 2, 3)), gas)).effects)
    committee, keys = generate_committee(4, seed=1)
    budget = len(effects[0].to_bytes()) + 10
    monkeypatch.setattr(wire, "MAX_EFFECTS_MESSAGE_BYTES", budget)

    class Signer:
        def sign_effects_batch(self, epoch: int, batch: Sequence[bytes]) -> object:
            return AuthorityState.sign_effects_batch(self, epoch, batch)  # type: ignore[arg-type]

        key = keys[0].authority

    messages = list(service_module._effects_messages(Signer(), effects))  # type: ignore[arg-type]
    assert [len(m.items) for m in messages] == [1, 1, 1]
    assert [i.effects for m in messages for i in m.items] == [e.to_bytes() for e in effects]
    for message in messages:
        tree = MerkleTree(
            batch_leaves(TransactionEffects.INTENT, [i.effects for i in message.items])
        )
        message.signature.verify(committee, BATCH_INTENT, tree.root)
