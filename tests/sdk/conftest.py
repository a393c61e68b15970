"""Fixtures: a fake network, a funded key, and each client (sync and async) over it,
called the same way so every scenario runs against both."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

from soma.sdk import ApiError, AsyncClient, Client
from soma.types.base import SomaAddress
from soma.types.crypto import AccountKeyPair
from tests.sdk.fake_network import URL, FakeNetwork


class Harness:
    """One client over the fake network; `await api("name", ...)` calls it whether
    its methods block or are coroutines."""

    def __init__(self, kind: str, net: FakeNetwork) -> None:
        self.kind = kind
        self.net = net
        self.client: Client | AsyncClient
        if kind == "sync":
            self.client = Client(URL, transport=net.transport())
        else:
            self.client = AsyncClient(URL, transport=net.async_transport())

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, name: str, *args: Any) -> list[Any]:
        """All the items of an `iter_*` call."""
        items = getattr(self.client, name)(*args)
        if hasattr(items, "__aiter__"):
            return [item async for item in items]
        return list(items)

    async def close(self) -> None:
        await self("close")


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(fee=10)


@pytest.fixture
def key() -> AccountKeyPair:
    return AccountKeyPair.generate()


@pytest.fixture
def other() -> SomaAddress:
    return AccountKeyPair.generate().public_key.to_address()


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest, net: FakeNetwork) -> AsyncIterator[Harness]:
    harness = Harness(request.param, net)
    yield harness
    await harness.close()


def mint(net: FakeNetwork, key: AccountKeyPair, *balances: int) -> SomaAddress:
    """Coins of these balances for `key`'s address; the address."""
    owner = key.public_key.to_address()
    for balance in balances:
        net.mint(owner, balance)
    return owner


async def refused(api: Harness, name: str, *args: object) -> ApiError:
    """The ApiError a call raises; nothing was executed on its way."""
    posts = api.net.posts()
    with pytest.raises(ApiError) as e:
        await api(name, *args)
    assert api.net.posts() == posts
    return e.value
