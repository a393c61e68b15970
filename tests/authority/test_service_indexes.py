"""The owner-side reads of the validator service over real gRPC on loopback:
GetOwnedObjects and GetCoins page (cursor inclusive, limit 0 is the default page, a
larger limit is clamped), GetBalance answers from the index, all of them include
executed transactions not yet flushed, and malformed requests and answers are refused
with typed errors."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import grpc
import pytest

from soma.authority import service_wire as wire
from soma.authority.service import ValidatorService
from soma.authority.service_client import ValidatorCallError, ValidatorClient
from soma.authority.state import AuthorityState
from soma.consensus.network import tls
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import NetworkKeyPair
from soma.types.object import Object
from soma.types.tls import tls_identity
from soma.types.transaction import SplitCoin, TransferCoin
from tests.authority.helpers import Chain, coin_object, execute_in
from tests.authority.index_scan import Expected, scan

#: Coins of the rich account beyond its genesis coin: more than one clamped page.
RICH_COINS = 1_100
LIVENESS_S = 60.0


def _rich(addresses: list[SomaAddress]) -> list[Object]:
    return [
        coin_object(ObjectID.from_int(0x200000 + i), 1 + (i * 7919) % 1013, addresses[0])
        for i in range(RICH_COINS)
    ]


@dataclasses.dataclass
class Served:
    chain: Chain
    state: AuthorityState
    client: ValidatorClient
    address: str
    certificate: bytes

    def expected(self) -> Expected:
        return scan(self.state.cache)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    chain = Chain(accounts=3, coins_per_account=2, extra_objects=_rich)
    state = chain.authority_state()
    identity = tls_identity(NetworkKeyPair.generate())
    service = ValidatorService(lambda: state, identity)
    port = service.bind("127.0.0.1:0")
    await service.start()
    address = f"127.0.0.1:{port}"
    client = ValidatorClient(address, identity.certificate_der)
    try:
        yield Served(chain, state, client, address, identity.certificate_der)
    finally:
        await client.close()
        await service.stop(0)


async def all_owned(client: ValidatorClient, owner: SomaAddress, limit: int) -> list[object]:
    out: list[object] = []
    cursor: ObjectID | None = None
    while True:
        page = await client.get_owned_objects(owner, cursor, limit)
        out.extend(page.objects)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def all_coins(client: ValidatorClient, owner: SomaAddress, limit: int) -> list[object]:
    out: list[object] = []
    cursor: wire.CoinCursor | None = None
    while True:
        page = await client.get_coins(owner, cursor, limit)
        out.extend((entry.ref, entry.balance) for entry in page.coins)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def test_balance_coins_and_owned_objects_round_trip(served: Served) -> None:
    client = served.client
    expected = served.expected()
    rich = served.chain.addresses[0]
    owners = [*served.chain.addresses, *served.chain.validator_addresses]
    for owner in owners:
        balance = await client.get_balance(owner)
        assert (balance.balance, balance.coins) == expected.balance(owner)
        assert await all_owned(client, owner, 0) == expected.owned[owner]
        assert await all_coins(client, owner, 0) == expected.coins[owner]
    assert (await client.get_balance(rich)).coins == RICH_COINS + 2
    # Limit 0 is the default page; the next cursor is the first object left out.
    page = await client.get_owned_objects(rich)
    assert list(page.objects) == expected.owned[rich][: wire.DEFAULT_PAGE]
    assert page.next_cursor == expected.owned[rich][wire.DEFAULT_PAGE].object_id
    # The cursor is inclusive.
    again = await client.get_owned_objects(rich, page.next_cursor, 3)
    assert list(again.objects) == expected.owned[rich][wire.DEFAULT_PAGE : wire.DEFAULT_PAGE + 3]
    # A limit above the maximum is clamped, up to u32's largest.
    for limit in (wire.MAX_PAGE + 1, 2**32 - 1):
        big = await client.get_owned_objects(rich, None, limit)
        assert len(big.objects) == wire.MAX_PAGE and big.next_cursor is not None
        coins = await client.get_coins(rich, None, limit)
        assert len(coins.coins) == wire.MAX_PAGE and coins.next_cursor is not None
    assert await all_coins(client, rich, 7) == expected.coins[rich]
    # Coins come largest first; a cursor names a balance and an ID, inclusive.
    first = await client.get_coins(rich, None, 5)
    balances = [entry.balance for entry in first.coins]
    assert balances == sorted(balances, reverse=True)
    assert first.next_cursor is not None
    resumed = await client.get_coins(rich, first.next_cursor, 1)
    assert resumed.coins[0].ref.object_id == first.next_cursor.object_id
    assert resumed.coins[0].balance == first.next_cursor.balance
    # Nobody: nothing, and no error.
    nobody = SomaAddress(b"\x42" * 32)
    assert await client.get_balance(nobody) == wire.GetBalanceResponse(0, 0)
    assert await client.get_owned_objects(nobody) == wire.GetOwnedObjectsResponse((), None)
    assert await client.get_coins(nobody) == wire.GetCoinsResponse((), None)


async def test_reads_include_transactions_not_yet_flushed(served: Served) -> None:
    chain, state = served.chain, served.state
    sender, recipient = chain.addresses[1], chain.addresses[2]
    coin, gas = (ref for ref, _ in served.expected().coins[sender])
    for kind in (SplitCoin(coin, (10, 20)), TransferCoin(coin, 1_234, recipient)):
        gas_now = state.get_object(gas.object_id)
        coin_now = state.get_object(coin.object_id)
        assert gas_now is not None and coin_now is not None
        kind = dataclasses.replace(kind, coin=coin_now.reference())
        tx = chain.sign(sender, kind, gas_now.reference())
        outputs = execute_in(state.cache, tx)
        assert outputs.effects.status.is_success(), outputs.effects.status
    assert state.cache.dirty_count == 2
    expected = served.expected()
    for owner in (sender, recipient):
        balance = await served.client.get_balance(owner)
        assert (balance.balance, balance.coins) == expected.balance(owner)
        assert await all_coins(served.client, owner, 2) == expected.coins[owner]
        assert await all_owned(served.client, owner, 1) == expected.owned[owner]
    assert expected.balance(sender)[1] == 4
    assert expected.balance(recipient)[1] == 3


async def test_garbage_requests_are_invalid_arguments(served: Served) -> None:
    channel = tls.dial(served.address, served.certificate, [])
    valid = wire.GetCoinsRequest(served.chain.addresses[0], None, 3).to_bytes()
    try:
        for method, garbage in [
            (wire.GET_BALANCE, b"\x01"),
            (wire.GET_COINS, valid + b"\x00"),
            (wire.GET_COINS, valid[:-1]),
            (wire.GET_OWNED_OBJECTS, valid[:32] + b"\x07"),
        ]:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(garbage, timeout=LIVENESS_S)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await channel.close()
    assert (await served.client.get_balance(served.chain.addresses[0])).coins > 0


async def test_the_client_refuses_pages_an_honest_validator_never_sends() -> None:
    client = ValidatorClient(
        "127.0.0.1:9", tls_identity(NetworkKeyPair.generate()).certificate_der
    )  # never called: the check alone
    ids = [ObjectID.from_int(i) for i in (3, 5, 8)]
    client._check_page(ids, ids[0], ObjectID.from_int(9), 3)  # cursor inclusive
    client._check_page(ids, ObjectID.from_int(1), None, 0)
    bad = [
        (ids[::-1], None, None, 0),  # out of order
        (ids, ObjectID.from_int(4), None, 0),  # before the cursor
        (ids, None, ids[-1], 0),  # a next cursor that does not move on
        ([], None, ids[0], 0),  # an empty page that is not the last
        (ids, None, None, 2),  # longer than asked
        ([ObjectID.from_int(1)] * (wire.MAX_PAGE + 1), None, None, 2**32 - 1),
    ]
    try:
        for keys, cursor, after, limit in bad:
            with pytest.raises(ValidatorCallError):
                client._check_page(keys, cursor, after, limit)
    finally:
        await client.close()
