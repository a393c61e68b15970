"""A client of one validator's service: typed calls, typed errors.

A refusal by the validator comes back as `RemoteError` with the validator's stable code
(`OBJECT_VERSION_UNAVAILABLE`, ...) and message; an unreachable validator or a failed
call is `ValidatorCallError`; an answer that does not decode is a `ValidatorCallError`
too. The SDK and the HTTP gateway build on this.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any, TypeVar

import grpc

from soma.authority import service_wire as wire
from soma.consensus.network import tls
from soma.consensus.network.server import channel_options
from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsStruct
from soma.types.committee import CommitteeMember
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError
from soma.types.transaction import SignedTransaction

R = TypeVar("R", bound=BcsStruct)
_ERROR = re.compile(r"^\[([A-Z0-9_]+)\] (.*)$", re.DOTALL)
DEFAULT_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class ValidatorCallError(SomaError):
    code = "VALIDATOR_CALL_FAILED"


class RemoteError(SomaError):
    """The validator refused the request; `remote_code` is its error's code."""

    code = "VALIDATOR_REFUSED"

    def __init__(self, remote_code: str, message: str) -> None:
        super().__init__(message)
        self.remote_code = remote_code

    def __str__(self) -> str:
        return f"[{self.remote_code}] {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.remote_code, "message": self.message}


class ValidatorClient:
    """Calls to the validator at `address`, over TLS pinned to `certificate` (the DER
    certificate the committee lists for it): any other server fails the handshake."""

    def __init__(self, address: str, certificate: bytes) -> None:
        self.address = address
        self._channel = tls.dial(
            address,
            certificate,
            channel_options(wire.MAX_REQUEST_BYTES, max_receive_bytes=MAX_RESPONSE_BYTES),
        )

    @classmethod
    def for_member(cls, member: CommitteeMember, address: str | None = None) -> ValidatorClient:
        """A client of a committee member, at its listed address unless `address`."""
        return cls(address or member.network_address, member.tls_certificate)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request: BcsStruct, kind: type[R], timeout_s: float) -> R:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(method)
        try:
            raw = await call(request.to_bytes(), timeout=timeout_s)
        except grpc.aio.AioRpcError as e:
            raise self._call_error(method, e) from None
        try:
            return kind.from_bytes(raw)
        except SomaError as e:
            raise ValidatorCallError(f"{self.address}: malformed answer: {e}") from None

    def _call_error(self, method: str, e: grpc.aio.AioRpcError) -> SomaError:
        details = e.details() or ""
        match = _ERROR.match(details)
        if e.code() is grpc.StatusCode.FAILED_PRECONDITION and match:
            return RemoteError(match.group(1), match.group(2))
        return ValidatorCallError(
            f"{self.address}: {method.rsplit('/', 1)[-1]} failed: {e.code().name} {details}"
        )

    async def submit(
        self, tx: SignedTransaction, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> TransactionDigest:
        response = await self._call(
            wire.SUBMIT,
            wire.SubmitTransactionRequest(tx),
            wire.SubmitTransactionResponse,
            timeout_s,
        )
        return response.digest

    async def wait_for_effects(
        self, digest: TransactionDigest, timeout_s: float = 30.0
    ) -> wire.WaitForEffectsResponse:
        timeout_ms = int(min(timeout_s, wire.MAX_WAIT_MS / 1000) * 1000)
        return await self._call(
            wire.WAIT_FOR_EFFECTS,
            wire.WaitForEffectsRequest(digest, timeout_ms),
            wire.WaitForEffectsResponse,
            timeout_s + 5,
        )

    async def submit_transactions(
        self, transactions: Sequence[SignedTransaction], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[wire.SubmitOutcome]:
        """One call for many transactions; an outcome for each, in order."""
        response = await self._call(
            wire.SUBMIT_BATCH,
            wire.SubmitTransactionsRequest(tuple(tx.to_bytes() for tx in transactions)),
            wire.SubmitTransactionsResponse,
            timeout_s,
        )
        if len(response.outcomes) != len(transactions):
            raise ValidatorCallError(
                f"{self.address}: {len(response.outcomes)} outcomes for "
                f"{len(transactions)} transactions"
            )
        return list(response.outcomes)

    async def stream_effects(
        self, digests: Sequence[TransactionDigest], timeout_s: float = 30.0
    ) -> AsyncGenerator[wire.EffectsBatch, None]:
        """The signed effects of `digests` as the validator makes them durable, a batch
        at a time; ends when all were sent or after `timeout_s`."""
        timeout_ms = int(min(timeout_s, wire.MAX_WAIT_MS / 1000) * 1000)
        method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = self._channel.unary_stream(
            wire.STREAM_EFFECTS
        )
        request = wire.StreamEffectsRequest(tuple(digests), timeout_ms)
        call = method(request.to_bytes(), timeout=timeout_s + 5)
        try:
            async for raw in call:
                try:
                    batch = wire.EffectsBatch.from_bytes(raw)
                except SomaError as e:
                    raise ValidatorCallError(f"{self.address}: malformed answer: {e}") from None
                yield batch
        except grpc.aio.AioRpcError as e:
            raise self._call_error(wire.STREAM_EFFECTS, e) from None
        finally:
            call.cancel()

    async def get_object(self, object_id: ObjectID) -> wire.GetObjectResponse:
        return await self._call(
            wire.GET_OBJECT,
            wire.GetObjectRequest(object_id),
            wire.GetObjectResponse,
            DEFAULT_TIMEOUT_S,
        )

    async def get_owned_objects(
        self, owner: SomaAddress, cursor: ObjectID | None = None, limit: int = 0
    ) -> wire.GetOwnedObjectsResponse:
        """A page of the objects `owner` owns, by ID from `cursor` (inclusive); `limit`
        0 is the validator's default page, and it serves at most `wire.MAX_PAGE`."""
        response = await self._call(
            wire.GET_OWNED_OBJECTS,
            wire.GetOwnedObjectsRequest(owner, cursor, limit),
            wire.GetOwnedObjectsResponse,
            DEFAULT_TIMEOUT_S,
        )
        self._check_page(
            [ref.object_id for ref in response.objects], cursor, response.next_cursor, limit
        )
        return response

    async def get_balance(self, owner: SomaAddress) -> wire.GetBalanceResponse:
        """The total balance of `owner`'s coins, and their number."""
        return await self._call(
            wire.GET_BALANCE,
            wire.GetBalanceRequest(owner),
            wire.GetBalanceResponse,
            DEFAULT_TIMEOUT_S,
        )

    async def get_coins(
        self, owner: SomaAddress, cursor: wire.CoinCursor | None = None, limit: int = 0
    ) -> wire.GetCoinsResponse:
        """A page of `owner`'s coins with their balances, largest first (ties by ID),
        from `cursor` (inclusive); `limit` as for `get_owned_objects`."""
        response = await self._call(
            wire.GET_COINS,
            wire.GetCoinsRequest(owner, cursor, limit),
            wire.GetCoinsResponse,
            DEFAULT_TIMEOUT_S,
        )
        self._check_page(
            [_coin_order(c.balance, c.ref.object_id) for c in response.coins],
            _coin_cursor_order(cursor),
            _coin_cursor_order(response.next_cursor),
            limit,
        )
        return response

    def _check_page(
        self, keys: list[Any], cursor: Any | None, next_cursor: Any | None, limit: int
    ) -> None:
        """Refuse a page that could not be the validator's honest answer: too long,
        out of order, before the cursor, or a next cursor that would not move on (a
        client paging to the end would then never get there)."""
        honest = (
            len(keys) <= wire.page_limit(limit)
            and all(a < b for a, b in itertools.pairwise(keys))
            and (cursor is None or not keys or not keys[0] < cursor)
            and (next_cursor is None or (bool(keys) and keys[-1] < next_cursor))
        )
        if not honest:
            raise ValidatorCallError(f"{self.address}: malformed page: {len(keys)} entries")

    async def get_transaction(self, digest: TransactionDigest) -> wire.GetTransactionResponse:
        return await self._call(
            wire.GET_TRANSACTION,
            wire.GetTransactionRequest(digest),
            wire.GetTransactionResponse,
            DEFAULT_TIMEOUT_S,
        )

    async def get_certified_summary(
        self, index: int | None = None
    ) -> wire.GetCertifiedSummaryResponse:
        """The certified summary of commit `index`, or the highest held (None: latest)."""
        return await self._call(
            wire.GET_CERTIFIED_SUMMARY,
            wire.GetCertifiedSummaryRequest(index),
            wire.GetCertifiedSummaryResponse,
            DEFAULT_TIMEOUT_S,
        )

    async def get_supply(self) -> wire.GetSupplyResponse:
        """Where the network's money is, as this validator has executed it."""
        return await self._call(
            wire.GET_SUPPLY, wire.GetSupplyRequest(), wire.GetSupplyResponse, DEFAULT_TIMEOUT_S
        )

    async def get_recent_dag(
        self, rounds: int, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> wire.GetRecentDagResponse:
        """The last `rounds` rounds of the validator's DAG and its leader decisions; a
        validator with no consensus running refuses (`CONSENSUS_UNAVAILABLE`)."""
        return await self._call(
            wire.GET_RECENT_DAG,
            wire.GetRecentDagRequest(rounds),
            wire.GetRecentDagResponse,
            timeout_s,
        )

    async def get_commits(
        self, start: int, count: int, detail: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[wire.CommitRecord]:
        """Records of the executed commits from `start`, consecutive, at most `count`
        (`service_wire.GetCommitsRequest`)."""
        response = await self._call(
            wire.GET_COMMITS,
            wire.GetCommitsRequest(start, count, detail),
            wire.GetCommitsResponse,
            timeout_s,
        )
        records = list(response.records)
        expected = list(range(start, start + len(records)))
        if len(records) > count or [r.index for r in records] != expected:
            raise ValidatorCallError(f"{self.address}: malformed commit records")
        return records

    async def get_status(self) -> wire.GetStatusResponse:
        return await self._call(
            wire.GET_STATUS, wire.GetStatusRequest(), wire.GetStatusResponse, DEFAULT_TIMEOUT_S
        )


def _coin_order(balance: int, object_id: ObjectID) -> tuple[int, ObjectID]:
    """A coin's place in a GetCoins page, as a key that sorts ascending."""
    return (-balance, object_id)


def _coin_cursor_order(cursor: wire.CoinCursor | None) -> tuple[int, ObjectID] | None:
    return None if cursor is None else _coin_order(cursor.balance, cursor.object_id)
