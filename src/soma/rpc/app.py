"""The public HTTP API (FastAPI; the OpenAPI document is at /openapi.json).

Every error is JSON `{"code": ..., "message": ...}` with a 4xx status for bad input (a
malformed address or transaction, an unknown object, a transaction the validators
refuse) and 5xx only when the network cannot answer (503 unreachable, 504 timed out).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from soma.authority.service_client import RemoteError
from soma.rpc.gateway import Gateway, NoValidatorError
from soma.rpc.json_form import effects_json, object_json, to_json
from soma.rpc.limits import (
    ApiLimits,
    LimitsMiddleware,
    error_response,
    http_error_response,
    validation_error,
)
from soma.rpc.quorum_driver import QuorumTimeoutError, QuorumUnreachableError
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError
from soma.types.transaction import SignedTransaction


class ApiError(SomaError):
    """An error answered to an HTTP client, with its status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = code


class FaucetRequest(BaseModel):
    address: str


class ExecuteRequest(BaseModel):
    #: BCS bytes of a SignedTransaction, base64.
    tx_bytes: str


def _address(text: str) -> SomaAddress:
    try:
        return SomaAddress.from_hex(text)
    except SomaError as e:
        raise ApiError(400, "INVALID_ADDRESS", e.message) from None


def _object_id(text: str) -> ObjectID:
    try:
        return ObjectID.from_hex(text)
    except SomaError as e:
        raise ApiError(400, "INVALID_OBJECT_ID", e.message) from None


def _digest(text: str) -> TransactionDigest:
    try:
        return TransactionDigest.from_base58(text)
    except SomaError as e:
        raise ApiError(400, "INVALID_DIGEST", e.message) from None


def execution_result(certificate: Any) -> dict[str, Any]:
    effects = certificate.data
    return {
        "digest": str(effects.transaction_digest),
        "status": "success" if effects.status.is_success() else "failure",
        "fee": effects.gas_used,
        "effects": effects_json(effects),
        "certificate": base64.b64encode(certificate.to_bytes()).decode("ascii"),
    }


def create_app(
    gateway: Gateway, faucet: Any | None = None, limits: ApiLimits | None = None
) -> FastAPI:
    app = FastAPI(title="soma", description="The public API of a soma network.")
    # `RunningApi` reads the limits here for the HTTP server's own settings.
    app.state.limits = limits = ApiLimits() if limits is None else limits
    app.add_middleware(LimitsMiddleware, limits=limits)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.error_code, e.message)

    @app.exception_handler(RemoteError)
    async def refused(_: Request, e: RemoteError) -> JSONResponse:
        return error_response(400, e.remote_code, e.message)

    @app.exception_handler(NoValidatorError)
    @app.exception_handler(QuorumUnreachableError)
    async def unreachable(_: Request, e: SomaError) -> JSONResponse:
        return error_response(503, e.code, e.message)

    @app.exception_handler(QuorumTimeoutError)
    async def timed_out(_: Request, e: SomaError) -> JSONResponse:
        return error_response(504, e.code, e.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        code, message = validation_error(e.errors(), e.body, request.scope.get("route"))
        return error_response(400, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return http_error_response(e.status_code, str(e.detail), e.headers, e.__cause__)

    @app.exception_handler(Exception)
    async def internal(_: Request, e: Exception) -> JSONResponse:
        return error_response(500, "INTERNAL_ERROR", "the node failed to answer; see its log")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        status = await gateway.status()
        return {"status": "ok", "epoch": status.epoch, "latest_commit": status.latest_commit}

    @app.get("/committee")
    async def committee() -> dict[str, Any]:
        status = await gateway.status()
        c = status.system_state.committee()
        return {"epoch": c.epoch, "total_stake": c.total_stake, "members": to_json(c.members)}

    @app.get("/status")
    async def network_status() -> dict[str, Any]:
        status = await gateway.status()
        return {
            "epoch": status.epoch,
            "latest_commit": status.latest_commit,
            "accumulated_commit": status.accumulated_commit,
            "state_root": status.state_root.hex(),
            "transaction_fee": status.system_state.parameters.transaction_fee,
        }

    @app.get("/commits/latest")
    async def latest_commit() -> dict[str, Any]:
        status = await gateway.status()
        return {"epoch": status.epoch, "index": status.latest_commit}

    @app.get("/objects/{object_id}")
    async def get_object(object_id: str) -> dict[str, Any]:
        oid = _object_id(object_id)
        answer = await gateway.read(lambda c: c.get_object(oid))
        if answer.object is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"object {oid} does not exist")
        return object_json(answer.object)

    @app.get("/addresses/{address}/objects")
    async def owned_objects(address: str) -> list[dict[str, Any]]:
        owner = _address(address)
        answer = await gateway.read(lambda c: c.get_owned_objects(owner))
        return [to_json(r) for r in answer.objects]

    @app.get("/addresses/{address}/balance")
    async def balance(address: str) -> dict[str, Any]:
        owner = _address(address)

        async def total(client: Any) -> tuple[int, int]:
            owned = await client.get_owned_objects(owner)
            amount, coins = 0, 0
            for ref in owned.objects:
                obj = (await client.get_object(ref.object_id)).object
                if obj is not None and obj.is_coin():
                    amount += obj.coin_balance()
                    coins += 1
            return amount, coins

        amount, coins = await gateway.read(total)
        return {"address": str(owner), "balance": amount, "coins": coins}

    @app.get("/transactions/{digest}")
    async def get_transaction(digest: str) -> dict[str, Any]:
        d = _digest(digest)
        answer = await gateway.read(lambda c: c.get_transaction(d))
        if answer.transaction is None:
            raise ApiError(404, "TRANSACTION_NOT_FOUND", f"transaction {d} is not known")
        return {
            "digest": str(d),
            "transaction": to_json(answer.transaction.data),
            "effects": None if answer.effects is None else effects_json(answer.effects.data),
        }

    @app.post("/transactions")
    async def execute(request: ExecuteRequest) -> dict[str, Any]:
        try:
            raw = base64.b64decode(request.tx_bytes, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "INVALID_REQUEST", "tx_bytes: not base64") from None
        try:
            tx = SignedTransaction.from_bytes(raw)
        except SomaError as e:
            raise ApiError(400, e.code, f"tx_bytes: {e.message}") from None
        try:
            tx.verify()
        except SomaError as e:
            raise ApiError(400, e.code, e.message) from None
        return execution_result(await gateway.execute(tx))

    if faucet is not None:

        @app.post("/faucet")
        async def give(request: FaucetRequest) -> dict[str, Any]:
            address = _address(request.address)
            return execution_result(await faucet.give(address))

    return app
