"""The blocking client of a soma network's HTTP API (the CLI, scripts).

It runs the SDK's flows (`soma.sdk.api`) over one `httpx.Client`, so connections are
reused across calls and every call has a timeout. Transactions are built and signed
here, with the caller's key: the API never sees a key. Every failure is an `ApiError`
with a stable code; a transaction that executes and fails is returned as its result
(see `soma.sdk.results.result_error`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from soma.sdk.api import Gas
from soma.sdk.base import ClientBase, tls_verification
from soma.sdk.coins import GAS_BUDGET_FEES, Coin
from soma.sdk.core import DEFAULT_TIMEOUT_S, Done, Flow, Parallel, Sleep, Step, advance
from soma.sdk.errors import ApiError
from soma.sdk.validator import Registration
from soma.sdk.wire import Address, Page, ref_from_json
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionKind

#: Today's names importable from here too (the CLI imports ApiError from this module).
__all__ = [
    "DEFAULT_TIMEOUT_S",
    "GAS_BUDGET_FEES",
    "ApiError",
    "Client",
    "ref_from_json",
]

T = TypeVar("T")


class Client(ClientBase[httpx.BaseTransport]):
    """Blocking calls to the API at `api_url`; a context manager (closes its
    connections on exit). `transport` replaces the network (tests)."""

    _http: httpx.Client
    _sender_locks: dict[SomaAddress, threading.Lock]

    def _connect(self, transport: httpx.BaseTransport | None) -> None:
        self._sender_locks = {}
        self._locks_guard = threading.Lock()
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=self.timeout_s,
            transport=transport,
            verify=tls_verification(self.api_url),
        )

    def close(self) -> None:
        self._http.close()

    def _sending(self, key: AccountKeyPair) -> threading.Lock:
        """The lock of `key`'s address: transfers from one sender in several threads run
        one after another, so each picks the coin versions the previous one left (two
        that pick the same ones alike would be one and the same transaction)."""
        address = key.public_key.to_address()
        with self._locks_guard:
            lock = self._sender_locks.get(address)
            if lock is None:
                lock = self._sender_locks[address] = threading.Lock()
        return lock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- running flows -------------------------------------------------------------------

    def run(self, flow: Flow[T]) -> T:
        """Carry out `flow`'s steps until it returns."""
        reply: Any = None
        while not isinstance(step := advance(flow, reply), Done):
            reply = self._perform(step)
        return step.value

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Parallel):
            return [self._outcome(flow) for flow in step.flows]
        try:
            return self._http.request(step.method, step.path, params=step.params, json=step.body)
        except httpx.HTTPError as e:
            return e

    def _outcome(self, flow: Flow[Any]) -> Any:
        try:
            return self.run(flow)
        except ApiError as e:
            return e

    @staticmethod
    def _pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
        """The items of every page, fetched as the previous one is consumed."""
        cursor: str | None = None
        while True:
            page = fetch(cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.run(self.api.health())

    def status(self) -> dict[str, Any]:
        return self.run(self.api.status())

    def committee(self) -> dict[str, Any]:
        return self.run(self.api.committee())

    def supply(self) -> dict[str, Any]:
        """`{"total", "genesis", "coins", "stake", "pending_fees"}`: where the network's
        money is (total equals genesis while supply is conserved)."""
        return self.run(self.api.supply())

    def fee(self) -> int:
        """The network's transaction fee (read once)."""
        return self.run(self.api.fee())

    def balance(self, address: Address) -> int:
        return self.run(self.api.balance(address))

    def balance_info(self, address: Address) -> dict[str, Any]:
        """`{"address", "balance", "coins"}`: the balance and how many coins hold it."""
        return self.run(self.api.balance_info(address))

    def objects(
        self, address: Address, cursor: str | None = None, limit: int | None = None
    ) -> Page[ObjectRef]:
        """One page of the objects `address` owns; pass `next_cursor` for the next."""
        return self.run(self.api.objects(address, cursor, limit))

    def iter_objects(self, address: Address) -> Iterator[ObjectRef]:
        """Every object `address` owns, page after page as they are consumed."""
        return self._pages(lambda cursor: self.objects(address, cursor))

    def coins(
        self, address: Address, cursor: str | None = None, limit: int | None = None
    ) -> Page[Coin]:
        """One page of the coins `address` owns, largest first."""
        return self.run(self.api.coins(address, cursor, limit))

    def iter_coins(self, address: Address) -> Iterator[Coin]:
        """Every coin `address` owns, largest first, page after page."""
        return self._pages(lambda cursor: self.coins(address, cursor))

    def get_object(self, object_id: ObjectID | str) -> dict[str, Any]:
        return self.run(self.api.get_object(object_id))

    def transaction(self, digest: str) -> dict[str, Any]:
        return self.run(self.api.transaction(digest))

    # --- writes --------------------------------------------------------------------------

    def execute(self, tx: SignedTransaction) -> dict[str, Any]:
        """Execute a signed transaction; its result once certified."""
        return self.run(self.api.execute(tx))

    def faucet(self, address: Address) -> dict[str, Any]:
        return self.run(self.api.faucet(address))

    def sign_and_execute(
        self, key: AccountKeyPair, kind: TransactionKind, gas: Gas, gas_budget: int | None = None
    ) -> dict[str, Any]:
        return self.run(self.api.sign_and_execute(key, kind, gas, gas_budget))

    def transfer(self, key: AccountKeyPair, to: Address, amount: int) -> dict[str, Any]:
        """Send `amount` to `to` from the fewest of the sender's coins that cover it
        and the fee (merging first if that is more than a transaction may name)."""
        with self._sending(key):
            return self.run(self.api.transfer(key, to, amount))

    def pay(
        self,
        key: AccountKeyPair,
        recipients: Sequence[Address],
        amounts: Sequence[int],
    ) -> dict[str, Any]:
        """Pay `amounts[i]` to `recipients[i]`, coins chosen as for `transfer`."""
        with self._sending(key):
            return self.run(self.api.pay(key, recipients, amounts))

    def merge_coins(
        self, key: AccountKeyPair, coins: Sequence[ObjectID | str] | None = None
    ) -> list[dict[str, Any]]:
        """Merge all the sender's coins (or the given ones) into one; every result."""
        with self._sending(key):
            return self.run(self.api.merge_coins(key, coins))

    def split_coin(self, key: AccountKeyPair, amounts: Sequence[int]) -> dict[str, Any]:
        """Split new coins of `amounts` off the largest coin."""
        with self._sending(key):
            return self.run(self.api.split_coin(key, amounts))

    # --- validators ----------------------------------------------------------------------

    def join_validator(
        self, key: AccountKeyPair, registration: Registration, stake: int
    ) -> dict[str, Any]:
        """Ask to join the committee from the next epoch, staking `stake` from the
        coins of `key`, the validator's account (`soma.sdk.validator.registration`
        builds the registration); coins are chosen, and merged if need be, as for a
        transfer."""
        with self._sending(key):
            return self.run(self.api.join_validator(key, registration, stake))

    def leave_validator(self, key: AccountKeyPair) -> dict[str, Any]:
        """Leave the committee at the next epoch change."""
        with self._sending(key):
            return self.run(self.api.leave_validator(key))

    def add_stake(self, key: AccountKeyPair, amount: int) -> dict[str, Any]:
        """Add `amount` from the validator account's coins to its stake (next epoch)."""
        with self._sending(key):
            return self.run(self.api.add_stake(key, amount))

    def withdraw_stake(self, key: AccountKeyPair, amount: int) -> dict[str, Any]:
        """Take `amount` of the validator's stake back, as a new coin."""
        with self._sending(key):
            return self.run(self.api.withdraw_stake(key, amount))
