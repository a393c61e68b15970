"""Both clients against the fake API: reads and paging, errors, and coin handling as a
user thinks of it (each test runs once with `Client`, once with `AsyncClient`)."""

from __future__ import annotations

import httpx
import pytest

from soma.sdk import ApiError, Coin, result_error
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.transaction import MergeCoins, PayCoins, SplitCoin, TransferCoin
from tests.sdk.conftest import Harness, mint, refused
from tests.sdk.fake_network import FakeNetwork

# --- reads -------------------------------------------------------------------------------


async def test_reads(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, 30, 20)
    assert (await api("status"))["transaction_fee"] == 10
    assert (await api("health"))["status"] == "ok"
    assert (await api("committee"))["epoch"] == 0
    assert await api("fee") == 10
    assert await api("balance", owner) == 50
    info = await api("balance_info", str(owner))
    assert info == {"address": str(owner), "balance": 50, "coins": 2}


async def test_coins_page_largest_first(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = mint(net, key, *range(1, 251))
    page = await api("coins", owner, None, 100)
    assert [c.balance for c in page.items] == list(range(250, 150, -1))
    assert isinstance(page.items[0], Coin)
    following = await api("coins", owner, page.next_cursor, 100)
    assert following.items[0].balance == 150
    every = await api.collect("iter_coins", owner)
    assert [c.balance for c in every] == list(range(250, 0, -1))
    assert [q for q in net.requests if q[1].endswith("/coins")][-1][2] == {"cursor": "at-200"}


async def test_objects_pages(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, *([5] * 120))
    page = await api("objects", owner, limit=50)
    assert len(page.items) == 50 and page.next_cursor is not None
    refs = await api.collect("iter_objects", owner)
    assert {r.object_id for r in refs} == {o.id for o in net.owned(owner)}
    last = await api("objects", owner, "at-100", 50)
    assert (len(last.items), last.next_cursor) == (20, None)


async def test_object_and_transaction_lookups(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 100)
    coin = net.coins_of(owner)[0]
    assert (await api("get_object", coin.id))["balance"] == 100
    result = await api("transfer", key, other, 5)
    assert (await api("transaction", result["digest"]))["status"] == "success"
    error = await refused(api, "get_object", ObjectID.from_int(12345).to_hex())
    assert (error.api_code, error.status) == ("OBJECT_NOT_FOUND", 404)


# --- errors ------------------------------------------------------------------------------


async def test_server_error_code(api: Harness) -> None:
    error = await refused(api, "transaction", "nope")
    assert (error.api_code, error.status) == ("TRANSACTION_NOT_FOUND", 404)


async def test_non_json_answer(api: Harness, net: FakeNetwork) -> None:
    net.broken = 1
    error = await refused(api, "status")
    assert (error.api_code, error.status) == ("HTTP_502", 502)


async def test_rate_limited_then_answered(api: Harness, net: FakeNetwork) -> None:
    net.throttled = 3
    assert (await api("status"))["epoch"] == 0
    assert len(net.requests) == 4


async def test_rate_limited_for_good(api: Harness, net: FakeNetwork) -> None:
    net.throttled = 100
    error = await refused(api, "status")
    assert (error.api_code, error.status) == ("RATE_LIMITED", 429)
    assert len(net.requests) == 4


@pytest.mark.parametrize(
    ("failure", "code"),
    [(httpx.ConnectError("refused"), "UNREACHABLE"), (httpx.ReadTimeout("slow"), "TIMEOUT")],
)
async def test_transport_failures(
    api: Harness, net: FakeNetwork, failure: httpx.HTTPError, code: str
) -> None:
    net.fail_with = failure
    assert (await refused(api, "status")).api_code == code


async def test_short_addresses_are_refused(api: Harness, key: AccountKeyPair) -> None:
    assert (await refused(api, "balance", "0x1234")).api_code == "INVALID_ADDRESS"
    assert (await refused(api, "transfer", key, "0xabc", 5)).api_code == "INVALID_ADDRESS"


# --- transfer and pay --------------------------------------------------------------------


async def test_transfer_from_the_largest_coin_alone(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 500, 40)
    result = await api("transfer", key, other.to_hex(), 100)
    assert result_error(result) is None
    tx = net.sent[-1].data
    assert isinstance(tx.kind, TransferCoin)
    assert tx.gas_payment == tx.kind.coin
    assert tx.gas_budget == 100  # ten fees
    assert (net.balance(other), net.balance(owner)) == (100, 430)


async def test_transfer_from_several_coins(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 5, 50, 30, 20, 1)
    result = await api("transfer", key, other, 85)
    assert result["status"] == "success"
    tx = net.sent[-1].data
    assert isinstance(tx.kind, PayCoins)
    assert len(tx.kind.coins) == 3  # 50 + 30 + 20 cover 85 + fee 10
    assert tx.gas_payment is not None and tx.gas_payment.object_id == tx.kind.coins[0].object_id
    assert tx.gas_budget == 50  # the gas coin's balance, below ten fees
    assert (net.balance(other), net.balance(owner)) == (85, 11)


async def test_transfer_needs_merges_first(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    net.fee = 1
    owner = mint(net, key, *([10] * 500))
    result = await api("transfer", key, other, 3000)
    assert result["status"] == "success"
    assert [m["status"] for m in result["merges"]] == ["success"]
    assert isinstance(net.sent[0].data.kind, MergeCoins)
    assert isinstance(net.sent[-1].data.kind, PayCoins)
    assert (net.balance(other), net.balance(owner)) == (3000, 5000 - 3000 - 2)
    # Paging stopped once the coins covered it: 4 pages of 100, not all 5.
    assert sum(1 for q in net.requests if q[1].endswith("/coins")) == 4


@pytest.mark.parametrize("stale", [1, 3])
async def test_a_transfer_refused_for_stale_coins_reads_them_again(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress, stale: int
) -> None:
    """Coins read from a node behind the network (or spent by another client of the
    account) are refused at their old version: the SDK reads them again and retries."""
    owner = mint(net, key, 500, 40)
    net.stale_listings = stale
    result = await api("transfer", key, other, 100)
    assert result["status"] == "success"
    assert (net.balance(other), net.balance(owner)) == (100, 430)
    assert net.posts() == stale + 1 and len(net.sent) == 1
    listings = sum(1 for q in net.requests if q[1].endswith("/coins"))
    assert listings == stale + 1


async def test_stale_coins_are_retried_a_bounded_number_of_times(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    mint(net, key, 500)
    net.stale_listings = 100
    with pytest.raises(ApiError) as raised:
        await api("transfer", key, other, 100)
    assert raised.value.api_code == "OBJECT_VERSION_UNAVAILABLE"
    assert net.posts() == 4 and net.sent == []  # the first try and three more


async def test_split_and_merge_read_stale_coins_again(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = mint(net, key, 500, 40, 30)
    net.stale_listings = 1
    assert (await api("split_coin", key, [100]))["status"] == "success"
    net.stale_listings = 1
    results = await api("merge_coins", key)
    assert [r["status"] for r in results] == ["success"]
    assert len(net.coins_of(owner)) == 1 and net.posts() == 4


async def test_transfer_beyond_the_balance(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 50, 45)
    error = await refused(api, "transfer", key, other, 90)
    assert error.api_code == "INSUFFICIENT_BALANCE"
    assert error.message == f"{owner} holds 95 in 2 coins; 90 + fee 10 needed"


async def test_no_coin_can_pay_the_fee(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    mint(net, key, *([9] * 5))
    assert (await refused(api, "transfer", key, other, 20)).api_code == "INSUFFICIENT_GAS"


async def test_pay_several_recipients(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 60, 60)
    third = AccountKeyPair.generate().public_key.to_address()
    result = await api("pay", key, [other, str(third)], [50, 30])
    assert result["status"] == "success"
    assert (net.balance(other), net.balance(third), net.balance(owner)) == (50, 30, 30)


@pytest.mark.parametrize(("amounts", "recipients"), [([5, 6], 1), ([0], 1), ([], 0)])
async def test_pay_argument_errors(
    api: Harness, key: AccountKeyPair, other: SomaAddress, amounts: list[int], recipients: int
) -> None:
    error = await refused(api, "pay", key, [other] * recipients, amounts)
    assert error.api_code == "INVALID_AMOUNT"


# --- merge and split ---------------------------------------------------------------------


async def test_merge_all_coins(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, 5, 50, 30, 20)
    results = await api("merge_coins", key)
    assert [r["status"] for r in results] == ["success"]
    assert [o.coin_balance() for o in net.coins_of(owner)] == [95]


async def test_merge_some_coins(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, 5, 50, 30, 20)
    chosen = [o.id for o in net.coins_of(owner)[2:]]
    await api("merge_coins", key, [str(chosen[0]), chosen[1]])
    assert [o.coin_balance() for o in net.coins_of(owner)] == [50, 30, 15]


async def test_merge_refusals(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 50)
    assert (await refused(api, "merge_coins", key)).api_code == "NOTHING_TO_MERGE"
    mine = net.coins_of(owner)[0].id
    theirs = net.mint(other, 70).object_id
    error = await refused(api, "merge_coins", key, [mine, theirs])
    assert error.api_code == "UNKNOWN_COIN"
    assert str(theirs) in error.message


async def test_merge_more_coins_than_a_transaction_takes(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    net.fee = 1
    owner = mint(net, key, *range(1, 601))
    results = await api("merge_coins", key)
    # 600 coins: merges of 256 and 90 leave 256 coins, then one final merge.
    assert [len(tx.data.kind.owned_inputs()) for tx in net.sent] == [256, 90, 256]
    assert [r["status"] for r in results] == ["success"] * 3
    assert [o.coin_balance() for o in net.coins_of(owner)] == [600 * 601 // 2 - 3]


async def test_split_coin(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, 100, 5)
    result = await api("split_coin", key, [20, 30])
    assert result["status"] == "success"
    assert isinstance(net.sent[-1].data.kind, SplitCoin)
    assert [o.coin_balance() for o in net.coins_of(owner)] == [40, 30, 20, 5]
    assert (await refused(api, "split_coin", key, [40])).api_code == "INSUFFICIENT_BALANCE"


async def test_failed_execution_is_a_result(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    owner = mint(net, key, 100)
    stale = net.coins_of(owner)[0].reference()
    await api("transfer", key, other, 10)
    net.validate = False  # as if ordered before the validators saw the coin move on
    result = await api("sign_and_execute", key, TransferCoin(stale, 5, other), stale, 100)
    assert result["status"] == "failure"
    assert result_error(result) == (
        "INPUT_OBJECT_CONSUMED",
        f"input object {stale.object_id} version {stale.version} was already consumed "
        "by another transaction",
    )


async def test_faucet(api: Harness, net: FakeNetwork, other: SomaAddress) -> None:
    assert (await api("faucet", other))["status"] == "success"
    assert net.balance(other) == 1_000_000
