"""A fake soma API for the SDK's tests, served through `httpx.MockTransport`.

It implements the HTTP contract the SDK codes against (status, balance, paged objects
and coins largest first, objects, transactions, faucet, `{"code", "message"}` errors)
over an in-memory object store, and executes transactions with the real validator
checks and executor, so a transaction the SDK builds is accepted here only if a
validator would accept it. It holds a system state (validators, parameters), so
validator transactions execute too. It can also answer 429s, non-JSON pages and the
refusals of validators changing epochs on demand.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import threading
from typing import Any

import httpx

from soma.authority.execution.executor import execute_transaction
from soma.authority.validation import check_inputs, check_signature_and_expiry
from soma.rpc.json_form import effects_json, object_json
from soma.sdk.validator import registration
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.object import AddressOwner, Object, ObjectRef
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemState, Validator, ValidatorSet
from soma.types.transaction import SharedInput, SignedTransaction

EPOCH = 0
#: The API is served below this path (a gateway's), so the clients must keep a base
#: URL's path in front of every call.
PREFIX = "/api"
URL = "http://soma.test" + PREFIX


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message})


class FakeNetwork:
    """The API's state and its request handler (sync and async)."""

    def __init__(self, fee: int = 10, validate: bool = True, min_stake: int = 1_000) -> None:
        self.fee = fee
        #: Off, a transaction goes straight to execution (as one ordered by consensus
        #: after its inputs changed), so it can fail there.
        self.validate = validate
        self.live: dict[ObjectID, Object] = {}
        self.executed: dict[str, dict[str, Any]] = {}
        #: (method, path, query) of every request, in order.
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        #: Answer the next `throttled` requests with 429 and this Retry-After.
        self.throttled = 0
        self.retry_after: str | None = "0"
        #: Answer the next `broken` requests with a non-JSON page of this status.
        self.broken = 0
        self.broken_status = 502
        #: Set by the async handler: the thread and loop each request ran on.
        self.async_calls: list[tuple[int, asyncio.AbstractEventLoop]] = []
        #: Async POST /transactions calls in flight now, and the most at once.
        self.in_flight = 0
        self.most_in_flight = 0
        #: Every transaction executed, in order.
        self.sent: list[SignedTransaction] = []
        #: Raise this from the transport instead of answering (unreachable, timeout).
        self.fail_with: httpx.HTTPError | None = None
        #: Answer the POST with this number (1 = the first) with a 504 (not executed).
        self.time_out_post: int | None = None
        #: Answer the next `stale_listings` coin listings as a node behind the network
        #: would: the coins listed move on to a new version right after.
        self.stale_listings = 0
        #: Refuse the next `epoch_refusals` POST /transactions or /faucet as validators
        #: closing an epoch do, with this code (nothing is executed).
        self.epoch_refusals = 0
        self.epoch_refusal_code = "EPOCH_ENDING"
        self._minted = 0
        self.live[SYSTEM_STATE_OBJECT_ID] = SystemState(
            epoch=EPOCH,
            protocol_version=1,
            validators=ValidatorSet(active=(), pending_active=(), pending_removals=()),
            parameters=dataclasses.replace(
                DEFAULT_PARAMETERS, transaction_fee=fee, min_validator_stake=min_stake
            ),
            epoch_start_timestamp_ms=0,
        ).to_object(1, TransactionDigest.zero())

    # --- state -------------------------------------------------------------------------

    def get_live_object(self, object_id: ObjectID) -> Object | None:
        return self.live.get(object_id)

    def mint(self, owner: SomaAddress, balance: int) -> ObjectRef:
        self._minted += 1
        object_id = ObjectID(hashlib.blake2b(b"coin%d" % self._minted, digest_size=32).digest())
        coin = Object.new_coin(object_id, balance, AddressOwner(owner), TransactionDigest.zero())
        self.live[object_id] = coin
        return coin.reference()

    def system_state(self) -> SystemState:
        return SystemState.from_object(self.live[SYSTEM_STATE_OBJECT_ID])

    def make_validator(self, account: SomaAddress, stake: int) -> None:
        """Add an active validator whose account is `account` (fresh keys)."""
        metadata = registration(
            account,
            AuthorityKeyPair.generate(),
            ProtocolKeyPair.generate(),
            NetworkKeyPair.generate(),
            f"validator-{len(self.system_state().validators.active)}",
            "127.0.0.1:1",
            "127.0.0.1:2",
            "127.0.0.1:3",
        ).metadata
        state = self.system_state()
        vs = state.validators
        active = (*vs.active, Validator(metadata, stake, stake))
        changed = dataclasses.replace(state, validators=dataclasses.replace(vs, active=active))
        obj = self.live[SYSTEM_STATE_OBJECT_ID]
        self.live[SYSTEM_STATE_OBJECT_ID] = obj.with_changes(contents=changed.to_bytes())

    def owned(self, owner: SomaAddress) -> list[Object]:
        return [o for o in self.live.values() if o.owner_address() == owner]

    def posts(self) -> int:
        return sum(1 for method, _, _ in self.requests if method == "POST")

    def coins_of(self, owner: SomaAddress) -> list[Object]:
        coins = [o for o in self.owned(owner) if o.is_coin()]
        return sorted(coins, key=lambda o: (-o.coin_balance(), o.id))

    def balance(self, owner: SomaAddress) -> int:
        return sum(o.coin_balance() for o in self.coins_of(owner))

    # --- handlers ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.requests.append((request.method, request.url.path, query))
        if self.fail_with is not None:
            raise self.fail_with
        if request.method == "POST" and self.posts() == self.time_out_post:
            return _error(504, "QUORUM_TIMEOUT", "not certified in time")
        refuse = self.epoch_refusals > 0 and request.url.path.endswith(("/transactions", "/faucet"))
        if request.method == "POST" and refuse:
            self.epoch_refusals -= 1
            return _error(400, self.epoch_refusal_code, "epoch 0 is closing")
        if self.throttled > 0:
            self.throttled -= 1
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return httpx.Response(
                429, json={"code": "RATE_LIMITED", "message": "slow down"}, headers=headers
            )
        if self.broken > 0:
            self.broken -= 1
            return httpx.Response(self.broken_status, text="<html>Bad Gateway</html>")
        if not request.url.path.startswith(PREFIX + "/"):
            return _error(404, "NOT_FOUND", f"nothing at {request.url.path}")
        parts = request.url.path.removeprefix(PREFIX).strip("/").split("/")
        try:
            return self._route(request, parts, query)
        except SomaError as e:
            return _error(400, e.code, e.message)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """The same answers, awaited on the caller's loop (records where it ran); a
        POST /transactions yields to the loop so concurrent ones overlap."""
        self.async_calls.append((threading.get_ident(), asyncio.get_running_loop()))
        if request.method != "POST":
            return self.handle(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            return self.handle(request)
        finally:
            self.in_flight -= 1

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    def _route(
        self, request: httpx.Request, parts: list[str], query: dict[str, str]
    ) -> httpx.Response:
        match request.method, parts:
            case "GET", ["health"]:
                return httpx.Response(200, json={"status": "ok", "epoch": EPOCH})
            case "GET", ["status"]:
                return httpx.Response(200, json=self._status())
            case "GET", ["supply"]:
                return httpx.Response(200, json=self._supply())
            case "GET", ["committee"]:
                return httpx.Response(200, json={"epoch": EPOCH, "total_stake": 1, "members": []})
            case "GET", ["addresses", text, "balance"]:
                owner = SomaAddress.from_hex(text)
                coins = self.coins_of(owner)
                body = {"address": str(owner), "balance": self.balance(owner), "coins": len(coins)}
                return httpx.Response(200, json=body)
            case "GET", ["addresses", text, "objects"]:
                refs = [
                    o.reference()
                    for o in sorted(self.owned(SomaAddress.from_hex(text)), key=lambda o: o.id)
                ]
                return self._page("objects", [_ref_json(r) for r in refs], query)
            case "GET", ["addresses", text, "coins"]:
                coins = self.coins_of(SomaAddress.from_hex(text))
                rows = [{**_ref_json(o.reference()), "balance": o.coin_balance()} for o in coins]
                if self.stale_listings > 0:
                    self.stale_listings -= 1
                    for coin in coins:
                        self.live[coin.id] = dataclasses.replace(coin, version=coin.version + 1)
                return self._page("coins", rows, query)
            case "GET", ["objects", text]:
                obj = self.live.get(ObjectID.from_hex(text))
                if obj is None:
                    return _error(404, "OBJECT_NOT_FOUND", f"object {text} does not exist")
                return httpx.Response(200, json=object_json(obj))
            case "GET", ["transactions", digest]:
                if digest not in self.executed:
                    return _error(
                        404, "TRANSACTION_NOT_FOUND", f"transaction {digest} is not known"
                    )
                return httpx.Response(200, json=self.executed[digest])
            case "POST", ["transactions"]:
                return self._execute(json.loads(request.content))
            case "POST", ["faucet"]:
                owner = SomaAddress.from_hex(json.loads(request.content)["address"])
                ref = self.mint(owner, 1_000_000)
                body = {
                    "digest": "faucet",
                    "status": "success",
                    "fee": 0,
                    "effects": {"created": [_ref_json(ref)]},
                }
                return httpx.Response(200, json=body)
        return _error(404, "NOT_FOUND", f"no route {request.method} {request.url.path}")

    def _supply(self) -> dict[str, Any]:
        """Fees count as pending (no epoch change here); minted coins count as genesis."""
        coins = sum(o.coin_balance() for o in self.live.values() if o.is_coin())
        stake = sum(v.next_epoch_stake for v in self.system_state().validators.active)
        stake += sum(v.next_epoch_stake for v in self.system_state().validators.pending_active)
        fees = sum(int(r["fee"]) for r in self.executed.values())
        total = coins + stake + fees
        return {
            "total": total,
            "genesis": total,
            "coins": coins,
            "stake": stake,
            "pending_fees": fees,
        }

    def _status(self) -> dict[str, Any]:
        return {
            "epoch": EPOCH,
            "latest_commit": 7,
            "state_root": "00",
            "transaction_fee": self.fee,
            "min_validator_stake": self.system_state().parameters.min_validator_stake,
        }

    def _page(self, key: str, rows: list[dict[str, Any]], query: dict[str, str]) -> httpx.Response:
        try:
            limit = int(query.get("limit", "100"))
            start = int(query["cursor"].removeprefix("at-")) if "cursor" in query else 0
        except ValueError:
            return _error(400, "INVALID_REQUEST", "bad limit or cursor")
        if not 1 <= limit <= 1000:
            return _error(400, "INVALID_REQUEST", "limit must be 1 to 1000")
        end = start + limit
        next_cursor = f"at-{end}" if end < len(rows) else None
        return httpx.Response(200, json={key: rows[start:end], "next_cursor": next_cursor})

    def _execute(self, body: dict[str, Any]) -> httpx.Response:
        tx = SignedTransaction.from_bytes(base64.b64decode(body["tx_bytes"]))
        check_signature_and_expiry(tx, EPOCH)
        if self.validate:
            check_inputs(tx.data, self, self.fee)
        shared = {
            entry.object_id: self.live[entry.object_id].version
            for entry in tx.data.input_objects()
            if isinstance(entry, SharedInput)
        }
        outputs = execute_transaction(tx, shared, self, EPOCH, self.fee)
        self.sent.append(tx)
        for obj in outputs.written:
            self.live[obj.id] = obj
        for object_id in outputs.deleted:
            del self.live[object_id]
        effects = outputs.effects
        digest = str(effects.transaction_digest)
        result: dict[str, Any] = {
            "digest": digest,
            "status": "success" if effects.status.is_success() else "failure",
            "fee": effects.gas_used,
            "effects": effects_json(effects),
            "certificate": "",
        }
        self.executed[digest] = result
        return httpx.Response(200, json=result)


def _ref_json(ref: ObjectRef) -> dict[str, Any]:
    return {"object_id": str(ref.object_id), "version": ref.version, "digest": str(ref.digest)}
