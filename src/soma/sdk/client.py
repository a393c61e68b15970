"""A client of a soma network's HTTP API.

`Client` makes blocking calls (the CLI, scripts); `AsyncClient` has the same methods as
coroutines (they run the blocking call in a thread, so an event loop is never blocked).
Transactions are built and signed here, with the caller's key: the API never sees a key.
Every failure is an `ApiError` with the server's stable code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.digests import ObjectDigest
from soma.types.error import SomaError
from soma.types.object import ObjectRef
from soma.types.transaction import (
    MergeCoins,
    PayCoins,
    SignedTransaction,
    SplitCoin,
    TransactionData,
    TransactionKind,
    TransferCoin,
)

DEFAULT_TIMEOUT_S = 90.0
#: The gas budget as a multiple of the network's fee.
GAS_BUDGET_FEES = 10


class ApiError(SomaError):
    """The API answered with an error (`api_code`), or could not be reached."""

    code = "API_ERROR"

    def __init__(self, api_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.api_code = api_code
        self.status = status

    def __str__(self) -> str:
        return f"[{self.api_code}] {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.api_code, "message": self.message}


def ref_from_json(data: dict[str, Any]) -> ObjectRef:
    return ObjectRef(
        ObjectID.from_hex(data["object_id"]),
        int(data["version"]),
        ObjectDigest.from_base58(data["digest"]),
    )


class Client:
    def __init__(self, api_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self._fee: int | None = None

    # --- plumbing ------------------------------------------------------------------------

    def _call(self, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                error = json.loads(e.read())
                raise ApiError(str(error["code"]), str(error["message"]), e.code) from None
            except (ValueError, KeyError, TypeError):
                raise ApiError(f"HTTP_{e.code}", e.reason or "error", e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ApiError("UNREACHABLE", f"cannot reach {self.api_url}: {reason}") from None

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("/health")
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("/status")
        return result

    def committee(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("/committee")
        return result

    def balance(self, address: SomaAddress) -> int:
        return int(self._call(f"/addresses/{address}/balance")["balance"])

    def objects(self, address: SomaAddress) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(f"/addresses/{address}/objects")
        return result

    def get_object(self, object_id: ObjectID | str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(f"/objects/{object_id}")
        return result

    def transaction(self, digest: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(f"/transactions/{digest}")
        return result

    def coins(self, address: SomaAddress) -> list[tuple[ObjectRef, int]]:
        """The address's coins with their balances, largest first."""
        out = []
        for entry in self.objects(address):
            obj = self.get_object(entry["object_id"])
            if "balance" in obj:
                out.append((ref_from_json(entry), int(obj["balance"])))
        return sorted(out, key=lambda c: (-c[1], c[0].object_id))

    def fee(self) -> int:
        if self._fee is None:
            self._fee = int(self.status()["transaction_fee"])
        return self._fee

    # --- writes --------------------------------------------------------------------------

    def execute(self, tx: SignedTransaction) -> dict[str, Any]:
        """Execute a signed transaction; its result once certified."""
        body = {"tx_bytes": base64.b64encode(tx.to_bytes()).decode("ascii")}
        result: dict[str, Any] = self._call("/transactions", body)
        return result

    def faucet(self, address: SomaAddress) -> dict[str, Any]:
        result: dict[str, Any] = self._call("/faucet", {"address": str(address)})
        return result

    def sign_and_execute(
        self, key: AccountKeyPair, kind: TransactionKind, gas: ObjectRef
    ) -> dict[str, Any]:
        data = TransactionData(
            kind, key.public_key.to_address(), gas, GAS_BUDGET_FEES * self.fee(), None
        )
        return self.execute(SignedTransaction.sign(data, key))

    def _gas(self, key: AccountKeyPair) -> tuple[ObjectRef, int, list[tuple[ObjectRef, int]]]:
        coins = self.coins(key.public_key.to_address())
        if not coins:
            raise ApiError("NO_COINS", f"{key.public_key.to_address()} owns no coins")
        return coins[0][0], coins[0][1], coins

    def transfer(self, key: AccountKeyPair, to: SomaAddress, amount: int) -> dict[str, Any]:
        """Send `amount` from the sender's largest coin (which also pays the fee)."""
        gas, _, _ = self._gas(key)
        return self.sign_and_execute(key, TransferCoin(gas, amount, to), gas)

    def pay(
        self, key: AccountKeyPair, recipients: Sequence[SomaAddress], amounts: Sequence[int]
    ) -> dict[str, Any]:
        """Pay several recipients from all the sender's coins merged (the largest pays
        the fee)."""
        gas, _, coins = self._gas(key)
        kind = PayCoins(tuple(c[0] for c in coins), tuple(amounts), tuple(recipients))
        return self.sign_and_execute(key, kind, gas)

    def merge_coins(self, key: AccountKeyPair) -> dict[str, Any]:
        gas, _, coins = self._gas(key)
        if len(coins) < 2:
            raise ApiError("NOTHING_TO_MERGE", "the address owns fewer than two coins")
        return self.sign_and_execute(key, MergeCoins(tuple(c[0] for c in coins)), gas)

    def split_coin(self, key: AccountKeyPair, amounts: Sequence[int]) -> dict[str, Any]:
        gas, _, _ = self._gas(key)
        return self.sign_and_execute(key, SplitCoin(gas, tuple(amounts)), gas)


class AsyncClient:
    """`Client`'s methods as coroutines."""

    def __init__(self, api_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.sync = Client(api_url, timeout_s)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call
