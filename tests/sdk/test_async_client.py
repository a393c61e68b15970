"""The async client is really async: its requests are awaited on the caller's loop
(no thread around a blocking client), and independent merges overlap."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, NoReturn

import pytest

from soma.sdk import ApiError, AsyncClient, Client
from soma.types.crypto import AccountKeyPair
from tests.sdk.fake_network import URL, FakeNetwork


async def test_requests_run_on_the_callers_loop(
    net: FakeNetwork, key: AccountKeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_threads(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("the async client must not hand work to a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    owner = key.public_key.to_address()
    net.mint(owner, 100)
    net.mint(owner, 50)
    async with AsyncClient(URL, transport=net.async_transport()) as client:
        assert await client.balance(owner) == 150
        await client.merge_coins(key)
    here = (threading.get_ident(), asyncio.get_running_loop())
    assert len(net.async_calls) >= 4
    assert all(call == here for call in net.async_calls)


async def test_independent_merges_overlap(net: FakeNetwork, key: AccountKeyPair) -> None:
    net.fee = 1
    owner = key.public_key.to_address()
    for balance in range(1, 601):
        net.mint(owner, balance)
    async with AsyncClient(URL, transport=net.async_transport()) as client:
        results = await client.merge_coins(key)
    assert len(results) == 3
    # The first round's two merges were in flight at once.
    assert net.most_in_flight == 2


async def test_async_close() -> None:
    client = AsyncClient(URL, transport=FakeNetwork().async_transport())
    async with client:
        assert (await client.health())["status"] == "ok"
    assert client._http.is_closed


def test_sync_close() -> None:
    with Client(URL, transport=FakeNetwork().transport()) as client:
        assert client.health()["status"] == "ok"
    assert client._http.is_closed


async def test_concurrent_transfers_from_one_sender_each_make_their_own(
    net: FakeNetwork, key: AccountKeyPair
) -> None:
    """Without the sender's lock both would read the same coin version and build the
    same transaction: one transfer, two "successes" (or a refusal)."""
    owner = key.public_key.to_address()
    recipient = AccountKeyPair.generate().public_key.to_address()
    net.mint(owner, 1_000_000)
    async with AsyncClient(URL, transport=net.async_transport()) as client:
        results = await asyncio.gather(*(client.transfer(key, recipient, 10) for _ in range(4)))
    assert [r["status"] for r in results] == ["success"] * 4
    assert len({r["digest"] for r in results}) == 4
    assert net.balance(recipient) == 40


def test_threads_transferring_from_one_sender_each_make_their_own(
    net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = key.public_key.to_address()
    recipient = AccountKeyPair.generate().public_key.to_address()
    net.mint(owner, 1_000_000)
    results: list[dict[str, Any]] = []
    with Client(URL, transport=net.transport()) as client:
        threads = [
            threading.Thread(target=lambda: results.append(client.transfer(key, recipient, 10)))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len({r["digest"] for r in results}) == 4
    assert net.balance(recipient) == 40


async def test_a_failed_merge_says_which_merges_had_executed(
    net: FakeNetwork, key: AccountKeyPair
) -> None:
    net.fee = 1
    owner = key.public_key.to_address()
    for balance in range(1, 601):
        net.mint(owner, balance)
    net.time_out_post = 2  # the first round's second merge
    async with AsyncClient(URL, transport=net.async_transport()) as client:
        with pytest.raises(ApiError) as info:
            await client.merge_coins(key)
    error = info.value
    assert error.api_code == "QUORUM_TIMEOUT"
    assert len(error.completed) == 1 and error.completed[0]["status"] == "success"
    assert "after 1 transaction(s) had executed" in error.message
    assert error.completed[0]["digest"] in error.message
