"""The async client: the same calls as `Client`, as coroutines on one
`httpx.AsyncClient`, for programs that run an event loop (a service paying many users,
a load generator).

It runs the same flows as `Client` (`soma.sdk.api`) and never uses a thread: every
request is awaited on the caller's loop, and independent merges run concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from soma.sdk.api import Gas
from soma.sdk.base import ClientBase, tls_verification
from soma.sdk.coins import Coin
from soma.sdk.core import Done, Flow, Parallel, Sleep, Step, advance
from soma.sdk.errors import ApiError
from soma.sdk.validator import Registration
from soma.sdk.wire import Address, Page
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionKind

T = TypeVar("T")


class AsyncClient(ClientBase[httpx.AsyncBaseTransport]):
    """`Client`'s calls as coroutines; an async context manager (`async with`) that
    closes its connections on exit. `transport` replaces the network (tests)."""

    _http: httpx.AsyncClient
    _sender_locks: dict[SomaAddress, asyncio.Lock]

    def _connect(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._sender_locks = {}
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=self.timeout_s,
            transport=transport,
            verify=tls_verification(self.api_url),
        )

    async def close(self) -> None:
        await self._http.aclose()

    def _sending(self, key: AccountKeyPair) -> asyncio.Lock:
        """The lock of `key`'s address: concurrent transfers from one sender run one
        after another, so each picks the coin versions the previous one left (two that
        pick the same ones alike would be one and the same transaction)."""
        address = key.public_key.to_address()
        lock = self._sender_locks.get(address)
        if lock is None:
            lock = self._sender_locks[address] = asyncio.Lock()
        return lock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- running flows -------------------------------------------------------------------

    async def run(self, flow: Flow[T]) -> T:
        """Carry out `flow`'s steps until it returns."""
        reply: Any = None
        while not isinstance(step := advance(flow, reply), Done):
            reply = await self._perform(step)
        return step.value

    async def _perform(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Parallel):
            return await asyncio.gather(*(self._outcome(flow) for flow in step.flows))
        try:
            return await self._http.request(
                step.method, step.path, params=step.params, json=step.body
            )
        except httpx.HTTPError as e:
            return e

    async def _outcome(self, flow: Flow[Any]) -> Any:
        try:
            return await self.run(flow)
        except ApiError as e:
            return e

    @staticmethod
    async def _pages(
        fetch: Callable[[str | None], Coroutine[Any, Any, Page[T]]],
    ) -> AsyncIterator[T]:
        """The items of every page, fetched as the previous one is consumed."""
        cursor: str | None = None
        while True:
            page = await fetch(cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- reads ---------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self.run(self.api.health())

    async def status(self) -> dict[str, Any]:
        return await self.run(self.api.status())

    async def committee(self) -> dict[str, Any]:
        return await self.run(self.api.committee())

    async def supply(self) -> dict[str, Any]:
        """`{"total", "genesis", "coins", "stake", "pending_fees"}`: where the network's
        money is (total equals genesis while supply is conserved)."""
        return await self.run(self.api.supply())

    async def fee(self) -> int:
        return await self.run(self.api.fee())

    async def balance(self, address: Address) -> int:
        return await self.run(self.api.balance(address))

    async def balance_info(self, address: Address) -> dict[str, Any]:
        return await self.run(self.api.balance_info(address))

    async def objects(
        self, address: Address, cursor: str | None = None, limit: int | None = None
    ) -> Page[ObjectRef]:
        return await self.run(self.api.objects(address, cursor, limit))

    def iter_objects(self, address: Address) -> AsyncIterator[ObjectRef]:
        return self._pages(lambda cursor: self.objects(address, cursor))

    async def coins(
        self, address: Address, cursor: str | None = None, limit: int | None = None
    ) -> Page[Coin]:
        return await self.run(self.api.coins(address, cursor, limit))

    def iter_coins(self, address: Address) -> AsyncIterator[Coin]:
        return self._pages(lambda cursor: self.coins(address, cursor))

    async def get_object(self, object_id: ObjectID | str) -> dict[str, Any]:
        return await self.run(self.api.get_object(object_id))

    async def transaction(self, digest: str) -> dict[str, Any]:
        return await self.run(self.api.transaction(digest))

    # --- writes --------------------------------------------------------------------------

    async def execute(self, tx: SignedTransaction) -> dict[str, Any]:
        return await self.run(self.api.execute(tx))

    async def faucet(self, address: Address) -> dict[str, Any]:
        return await self.run(self.api.faucet(address))

    async def sign_and_execute(
        self, key: AccountKeyPair, kind: TransactionKind, gas: Gas, gas_budget: int | None = None
    ) -> dict[str, Any]:
        return await self.run(self.api.sign_and_execute(key, kind, gas, gas_budget))

    async def transfer(self, key: AccountKeyPair, to: Address, amount: int) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.transfer(key, to, amount))

    async def pay(
        self,
        key: AccountKeyPair,
        recipients: Sequence[Address],
        amounts: Sequence[int],
    ) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.pay(key, recipients, amounts))

    async def merge_coins(
        self, key: AccountKeyPair, coins: Sequence[ObjectID | str] | None = None
    ) -> list[dict[str, Any]]:
        async with self._sending(key):
            return await self.run(self.api.merge_coins(key, coins))

    async def split_coin(self, key: AccountKeyPair, amounts: Sequence[int]) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.split_coin(key, amounts))

    # --- validators ----------------------------------------------------------------------

    async def join_validator(
        self, key: AccountKeyPair, registration: Registration, stake: int
    ) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.join_validator(key, registration, stake))

    async def leave_validator(self, key: AccountKeyPair) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.leave_validator(key))

    async def add_stake(self, key: AccountKeyPair, amount: int) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.add_stake(key, amount))

    async def withdraw_stake(self, key: AccountKeyPair, amount: int) -> dict[str, Any]:
        async with self._sending(key):
            return await self.run(self.api.withdraw_stake(key, amount))
