"""LocalReader, the fullnode's ChainReader, against in-process validators.

- It answers what the validators answer: the same values as a RemoteReader over their
  services (the supply too), and the same JSON through the API (validators without
  consensus, fed the same commits, every commit certified, so nothing moves while they
  are compared). The explorer's reads too: commit records, transaction details with
  the validators' signatures over the effects, search; and the DAG is a 503 on both
  when no validator runs consensus.
- Read-after-write: on a node whose execution lags the quorum (its commits held back
  at a gate), `execute` returns only once the node executed the transaction, and a
  read right after it shows the write.
- A node that does not catch up in time answers LOCAL_EXECUTION_TIMEOUT (504).
- The faucet works through it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from soma.authority.paging import Page
from soma.authority.service_client import RemoteError
from soma.authority.state import AuthorityState
from soma.orchestrator.chain_reader import ChainReader
from soma.orchestrator.faucet import Faucet
from soma.orchestrator.local_reader import (
    LOCAL_EXECUTION_TIMEOUT_S,
    LocalExecutionTimeoutError,
    LocalReader,
)
from soma.orchestrator.quorum_driver import QuorumDriver
from soma.orchestrator.remote_reader import RemoteReader
from soma.rpc.app import create_app
from soma.rpc.limits import ApiLimits
from soma.types.base import AuthorityName, ObjectID, SomaAddress
from soma.types.commit_summary import CertifiedCommitSummary, SignedCommitSummary
from soma.types.consensus.commit import CommittedSubDag
from soma.types.digests import TransactionDigest
from soma.types.effects import CertifiedTransactionEffects
from soma.types.transaction import SignedTransaction, TransferCoin
from tests.authority.network import FEE, LocalValidators, TestNetwork
from tests.orchestrator.services import validator_services

#: Liveness bound of every wait here (never a performance assertion).
LIVENESS_S = 60.0
BALANCE = 10**12
NOBODY = SomaAddress.from_hex("0x" + "ee" * 32)


def _addresses(net: TestNetwork, where: list[str]) -> dict[AuthorityName, str]:
    return {m.name: where[i] for i, m in enumerate(net.committee.members)}


def _state(net: TestNetwork, index: int) -> Callable[[], AuthorityState]:
    def current() -> AuthorityState:
        state = net.validators[index].state
        assert state is not None
        return state

    return current


def _client(reader: ChainReader) -> httpx.AsyncClient:
    app = create_app(reader, limits=ApiLimits(rate_per_s=None))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api")


# --- the same answers as the validators' ---------------------------------------------------


@dataclasses.dataclass
class Quiet:
    net: LocalValidators
    local: LocalReader
    remote: RemoteReader
    digests: list[TransactionDigest]


def _certify_all(net: LocalValidators) -> None:
    """Certify every commit the validators summarised (signed by the first 2f+1), at
    every validator, as consensus would have."""
    states = net.live()
    for index in range(1, states[0].executed_commit + 1):
        summary = states[0].store.summaries.summary(index)
        assert summary is not None
        signed = [
            SignedCommitSummary.sign(summary, v.keys.authority, summary.epoch)
            for v in net.validators[:3]
        ]
        certified = CertifiedCommitSummary.from_signed(net.committee, signed)
        for state in states:
            state.add_certified(certified)


@pytest.fixture
async def quiet() -> AsyncIterator[Quiet]:
    """Account 0 pays accounts 1 and 2 in three commits (so they hold several coins)."""
    net = LocalValidators(size=4, accounts=4, balance=BALANCE)
    await net.start()
    try:
        digests = []
        for i, amount in enumerate((300, 200, 100)):
            gas = net.coin_ref(net.genesis_coin_ids[0])
            tx = net.sign(0, TransferCoin(gas, amount, net.addresses[1 + i % 2]), gas)
            await net.order([tx])
            digests.append(tx.digest())
        _certify_all(net)
        async with validator_services(net) as (_, where):
            addresses = _addresses(net, where)
            remote = RemoteReader(net.committee, FEE, addresses)
            driver = QuorumDriver.for_committee(net.committee, addresses)
            local = LocalReader(_state(net, 0), driver)
            try:
                yield Quiet(net, local, remote, digests)
            finally:
                await remote.close()
                await local.close()
    finally:
        await net.stop()
        net.close()


async def _pages(reader: ChainReader, what: str, owner: SomaAddress) -> list[Page[Any, Any]]:
    """Every page of `owner`'s objects or coins, one entry each, following the cursors."""
    read: Callable[[SomaAddress, Any, int], Awaitable[Page[Any, Any]]] = (
        reader.coins if what == "coins" else reader.owned_objects
    )
    pages: list[Page[Any, Any]] = []
    cursor = None
    while True:
        page = await read(owner, cursor, 1)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _raw(value: Any) -> bytes | None:
    return None if value is None else bytes(value.to_bytes())


async def test_the_local_reader_answers_what_the_validators_answer(quiet: Quiet) -> None:
    local, remote, net = quiet.local, quiet.remote, quiet.net
    assert local.committee == remote.committee
    status = await local.status()
    assert status == await remote.status()
    assert status.latest_certified_commit == status.latest_commit == 3
    assert status.sync_lag == 0 and status.fork is None
    for index in (None, 1, 3, 4):
        assert _raw(await local.certified_summary(index)) == _raw(
            await remote.certified_summary(index)
        )
    assert await local.certified_summary(4) is None
    objects: list[ObjectID] = [ObjectID.from_int(999)]
    for owner in [*net.addresses, NOBODY]:
        assert await local.balance(owner) == await remote.balance(owner)
        assert await local.coins(owner, None, 0) == await remote.coins(owner, None, 0)
        assert await _pages(local, "coins", owner) == await _pages(remote, "coins", owner)
        pages = await _pages(local, "objects", owner)
        assert pages == await _pages(remote, "objects", owner)
        objects += [ref.object_id for page in pages for ref in page.items]
    assert await local.balance(net.addresses[1]) == (BALANCE + 400, 3)
    for object_id in objects:
        assert _raw(await local.get_object(object_id)) == _raw(await remote.get_object(object_id))
    for digest in [*quiet.digests, TransactionDigest(bytes(32))]:
        here, there = await local.transaction(digest), await remote.transaction(digest)
        if there is None:
            assert here is None
        else:
            assert here is not None and [_raw(v) for v in here] == [_raw(v) for v in there]
    assert await local.transaction(quiet.digests[0]) is not None
    supply = await local.supply()
    assert supply == await remote.supply()  # the validators' GetSupply
    assert supply.total == supply.genesis == supply.coins + supply.stake + supply.pending_fees
    assert supply.pending_fees == 3 * FEE  # the three transfers of this epoch


async def test_the_api_answers_the_same_over_either_reader(quiet: Quiet) -> None:
    net = quiet.net
    paths = ["/health", "/committee", "/status", "/supply", "/commits/latest"]
    paths.append("/summaries/latest")
    paths += ["/summaries/1", "/summaries/4", f"/objects/{ObjectID.from_int(999)}"]
    paths += [f"/transactions/{d}" for d in quiet.digests]
    paths.append(f"/transactions/{TransactionDigest(bytes(32))}")
    for owner in [*net.addresses[:3], NOBODY]:
        paths += [f"/addresses/{owner}/{what}" for what in ("balance", "objects", "coins")]
    for owner in net.addresses[:3]:
        for ref in (await quiet.local.owned_objects(owner, None, 0)).items:
            paths.append(f"/objects/{ref.object_id}")
    async with _client(quiet.local) as local, _client(quiet.remote) as remote:
        for what in ("objects", "coins"):
            # The pages (one entry each) of account 1, following the API's cursors.
            path = f"/addresses/{net.addresses[1]}/{what}?limit=1"
            while True:
                paths.append(path)
                cursor = (await local.get(path)).json()["next_cursor"]
                if cursor is None:
                    break
                path = f"/addresses/{net.addresses[1]}/{what}?limit=1&cursor={cursor}"
        answered = set()
        for path in paths:
            here, there = await local.get(path), await remote.get(path)
            assert (here.status_code, here.json()) == (there.status_code, there.json()), path
            answered.add(here.status_code)
        assert answered == {200, 404}


async def test_the_explorer_reads_answer_the_same_over_either_reader(quiet: Quiet) -> None:
    """Commit records, commits, transaction details (their signers asked of the
    validators) and search; the DAG is a 503 on both, these validators running no
    consensus."""
    local, remote = quiet.local, quiet.remote
    assert await local.commits(0, 10, False) == await remote.commits(0, 10, False)
    detailed = await local.commits(1, 3, True)
    assert detailed == await remote.commits(1, 3, True)
    assert [len(r.digests) for r in detailed] == [r.transactions for r in detailed]
    assert sum(r.user_transactions for r in detailed) == 3
    signatures = await local.effects_signatures(quiet.digests[0], _effects(quiet, 0))
    assert signatures.signers == quiet.net.committee.names()
    assert signatures.certificate is not None
    signatures.certificate.verify(quiet.net.committee)
    paths = ["/commits?limit=5", "/commits/1", "/commits/3", "/commits/4", "/dag?rounds=5"]
    paths += [f"/transactions/{d}/details" for d in quiet.digests]
    paths += [f"/search?q={quiet.digests[0]}", f"/search?q={quiet.net.addresses[0]}"]
    paths += ["/search?q=2", "/search?q=0x5"]
    async with _client(local) as here_client, _client(remote) as there_client:
        answered = set()
        for path in paths:
            here, there = await here_client.get(path), await there_client.get(path)
            assert (here.status_code, here.json()) == (there.status_code, there.json()), path
            answered.add(here.status_code)
        assert answered == {200, 404, 503}
        dag = await here_client.get("/dag")
        assert dag.json()["code"] == "NO_VALIDATOR_REACHABLE"


def _effects(quiet: Quiet, index: int) -> Any:
    state = quiet.net.validators[0].state
    assert state is not None
    return state.get_effects(quiet.digests[index])


async def test_status_takes_the_highest_certified_commit_known_from_peers(quiet: Quiet) -> None:
    known = [1]
    driver = QuorumDriver.for_committee(quiet.net.committee)
    reader = LocalReader(_state(quiet.net, 0), driver, highest_known_certified=lambda: known[0])
    try:
        # Peers know less than this node has certified: its own count.
        status = await reader.status()
        assert (status.highest_certified_commit, status.sync_lag) == (3, 0)
        known[0] = 10
        status = await reader.status()
        assert (status.highest_certified_commit, status.sync_lag) == (10, 7)
        async with _client(reader) as client:
            body = (await client.get("/status")).json()
        assert (body["highest_certified_commit"], body["sync_lag"]) == (10, 7)
        assert body["latest_certified_commit"] == 3
    finally:
        await reader.close()


# --- read-after-write on a node that lags ---------------------------------------------------


class GatedState(AuthorityState):
    """A validator whose execution the test holds back: each commit waits at `gate`
    (open unless a test closes it) before it is handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()

    async def handle_commit(self, subdag: CommittedSubDag) -> None:
        await self.gate.wait()
        await super().handle_commit(subdag)


@dataclasses.dataclass
class Lagging:
    """Four validators with consensus; the node under test reads validator 3's state,
    which the others (2f+1) certify without."""

    net: TestNetwork
    addresses: dict[AuthorityName, str]

    @property
    def gated(self) -> GatedState:
        state = self.net.validators[3].state
        assert isinstance(state, GatedState)
        return state

    def reader(self, timeout_s: float = LOCAL_EXECUTION_TIMEOUT_S) -> LocalReader:
        driver = QuorumDriver.for_committee(self.net.committee, self.addresses)
        return LocalReader(_state(self.net, 3), driver, local_timeout_s=timeout_s)

    def transfer(self, account: int, amount: int, recipient: SomaAddress) -> SignedTransaction:
        gas = self.net.coin_ref(self.net.genesis_coin_ids[account])
        return self.net.sign(account, TransferCoin(gas, amount, recipient), gas)


@pytest.fixture
async def lagging() -> AsyncIterator[Lagging]:
    net = TestNetwork(size=4, accounts=8, balance=BALANCE)
    net.state_factory[3] = GatedState
    try:
        await net.start()
        async with validator_services(net) as (_, where):
            try:
                yield Lagging(net, _addresses(net, where))
            finally:
                gated = net.validators[3].state
                if isinstance(gated, GatedState):
                    gated.gate.set()  # so that it stops like the others
        failures = net.failures()
    finally:
        await net.stop()
        net.close()
    assert failures == []


async def test_a_read_right_after_execute_sees_the_write_on_a_lagging_node(
    lagging: Lagging,
) -> None:
    net, node = lagging.net, lagging.gated
    reader = lagging.reader()
    certified = asyncio.Event()
    execute = reader.driver.execute

    async def certify(tx: SignedTransaction, timeout_s: float = 60.0) -> Any:
        certificate = await execute(tx, timeout_s)
        certified.set()
        return certificate

    reader.driver.execute = certify  # type: ignore[method-assign]
    recipient = net.addresses[7]
    try:
        node.gate.clear()
        tx = lagging.transfer(0, 500, recipient)
        executing = asyncio.ensure_future(reader.execute(tx))
        async with asyncio.timeout(LIVENESS_S):
            await certified.wait()
        # Certified by the others; this node has not executed it, so execute waits.
        assert node.get_effects(tx.digest()) is None
        assert not executing.done()
        node.gate.set()
        async with asyncio.timeout(LIVENESS_S):
            certificate = await executing
        assert certificate.data.transaction_digest == tx.digest()
        assert await reader.balance(recipient) == (BALANCE + 500, 2)

        # Again and again, with the gate open: every read right after shows the write.
        sender = net.addresses[0]
        expected = await reader.balance(sender)
        gas = certificate.data.gas_object()
        for i in range(10):
            assert gas is not None
            tx = net.sign(0, TransferCoin(gas, 10, recipient), gas)
            async with asyncio.timeout(LIVENESS_S):
                certificate = await reader.execute(tx)
            expected = (expected[0] - 10 - certificate.data.gas_used, 1)
            assert await reader.balance(sender) == expected
            assert await reader.balance(recipient) == (BALANCE + 500 + 10 * (i + 1), 3 + i)
            found = await reader.transaction(tx.digest())
            assert found is not None and _raw(found[1]) == _raw(certificate.data)
            gas = certificate.data.gas_object()
    finally:
        await reader.close()


async def test_a_node_that_does_not_catch_up_answers_local_execution_timeout(
    lagging: Lagging,
) -> None:
    net, node = lagging.net, lagging.gated
    reader = lagging.reader(timeout_s=0.5)
    recipient = net.addresses[7]
    try:
        node.gate.clear()
        tx = lagging.transfer(1, 100, recipient)
        with pytest.raises(LocalExecutionTimeoutError) as raised:
            async with asyncio.timeout(LIVENESS_S):
                await reader.execute(tx)
        assert raised.value.code == "LOCAL_EXECUTION_TIMEOUT"
        assert str(tx.digest()) in raised.value.message

        # Through the API: a 504 with that code, as the document says.
        late = lagging.transfer(2, 200, recipient)
        async with _client(reader) as client:
            body = {"tx_bytes": base64.b64encode(late.to_bytes()).decode()}
            answer = await client.post("/transactions", json=body)
            assert answer.status_code == 504, answer.text
            assert answer.json()["code"] == "LOCAL_EXECUTION_TIMEOUT"
            document = (await client.get("/openapi.json")).json()
        described = document["paths"]["/transactions"]["post"]["responses"]["504"]
        assert "LOCAL_EXECUTION_TIMEOUT" in described["description"]

        # Both were certified: once the node catches up, its reads show them.
        node.gate.set()
        async with asyncio.timeout(LIVENESS_S):
            await node.wait_for_effects(late.digest())
            await node.wait_for_effects(tx.digest())
        assert await reader.balance(recipient) == (BALANCE + 300, 3)
    finally:
        await reader.close()


async def test_a_refusal_of_inputs_read_here_while_behind_waits_for_the_node(
    lagging: Lagging,
) -> None:
    """A client read a coin here while this node was behind; the validators refuse the
    old version. The refusal is answered once this node has caught up on the coin, so
    that the client's next read here is fresh; a refusal for inputs this node already
    knows to be stale is answered at once, and one the node cannot catch up on in time
    is answered as it came."""
    net, node = lagging.net, lagging.gated
    reader, impatient = lagging.reader(), lagging.reader(timeout_s=0.3)
    recipient = net.addresses[7]
    certify = reader.driver.execute
    refusals = 0

    async def refuse(tx: SignedTransaction, timeout_s: float = 60.0) -> Any:
        nonlocal refusals
        refusals += 1
        raise RemoteError("OBJECT_VERSION_UNAVAILABLE", "object is at a newer version")

    async def spend_without_the_node(account: int) -> SignedTransaction:
        """A transfer of `account`'s coin certified by the others, and another naming
        the same coin version (as a client reading this node would sign)."""
        stale = lagging.transfer(account, 200, recipient)
        spent = lagging.transfer(account, 100, recipient)
        async with asyncio.timeout(LIVENESS_S):
            await certify(spent)
        return stale

    try:
        node.gate.clear()
        stale = await spend_without_the_node(4)
        reader.driver.execute = refuse  # type: ignore[method-assign]
        answering = asyncio.ensure_future(reader.execute(stale))
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert refusals == 1 and not answering.done()  # held while this node is behind
        node.gate.set()
        with pytest.raises(RemoteError) as raised:
            async with asyncio.timeout(LIVENESS_S):
                await answering
        assert raised.value.remote_code == "OBJECT_VERSION_UNAVAILABLE"
        assert "caught up" in raised.value.message
        live = await reader.get_object(net.genesis_coin_ids[4])
        assert stale.data.gas_payment is not None
        assert live is not None and live.version > stale.data.gas_payment.version

        # Stale here too: answered at once, as it came.
        with pytest.raises(RemoteError) as raised:
            async with asyncio.timeout(1.0):
                await reader.execute(stale)
        assert raised.value.message == "object is at a newer version"

        # Behind, and not catching up in time: the refusal as it came.
        node.gate.clear()
        stale = await spend_without_the_node(5)
        impatient.driver.execute = refuse  # type: ignore[method-assign]
        with pytest.raises(RemoteError) as raised:
            async with asyncio.timeout(LIVENESS_S):
                await impatient.execute(stale)
        assert raised.value.message == "object is at a newer version"
        assert refusals == 3
    finally:
        node.gate.set()
        await reader.close()
        await impatient.close()


async def test_the_faucet_grants_through_a_local_reader(lagging: Lagging) -> None:
    reader = lagging.reader()
    faucet = Faucet(reader, lagging.net.accounts[5], grant=1234)
    try:
        for grants in (1, 2):
            async with asyncio.timeout(LIVENESS_S):
                certificate: CertifiedTransactionEffects = await faucet.give(NOBODY)
            assert certificate.data.status.is_success()
            assert await reader.balance(NOBODY) == (1234 * grants, grants)
    finally:
        await reader.close()
