"""The public HTTP API (FastAPI; the OpenAPI document is at /openapi.json).

Every route reads and executes through one `ChainReader` (soma.orchestrator): the
validators' (`RemoteReader`) or a fullnode's own state (`LocalReader`); the routes only
parse, render and map errors, so the API is the same whichever node serves it. The
explorer's reads are in `explorer_api`, its page in `explorer_page`.

Every error is JSON `{"code": ..., "message": ...}` with a 4xx status for bad input (a
malformed address or transaction, an unknown object, a transaction the validators
refuse) and 5xx only when the network cannot answer (503 unreachable, 504 timed out:
no certificate in time, or a fullnode that did not execute the certified transaction
in time).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from soma.authority.service_client import RemoteError
from soma.authority.service_wire import CoinCursor
from soma.metrics.api import declare
from soma.orchestrator.chain_reader import ChainReader
from soma.orchestrator.faucet import Faucet, FaucetEmptyError
from soma.orchestrator.local_reader import LocalExecutionTimeoutError
from soma.orchestrator.quorum_driver import QuorumTimeoutError, QuorumUnreachableError
from soma.orchestrator.validator_reads import NoValidatorError
from soma.rpc import api_models as m
from soma.rpc.explorer_api import add_explorer_routes, signer_names
from soma.rpc.explorer_page import add_explorer_page
from soma.rpc.json_form import effects_json, object_json, to_json
from soma.rpc.limits import (
    ApiLimits,
    LimitsMiddleware,
    error_response,
    http_error_response,
    validation_error,
)
from soma.rpc.openapi_errors import document_errors
from soma.rpc.openapi_errors import error_responses as errors
from soma.rpc.parsing import ApiError
from soma.rpc.parsing import parse_address as _address
from soma.rpc.parsing import parse_digest as _digest
from soma.rpc.parsing import parse_object_id as _object_id
from soma.rpc.request_metrics import RequestMetricsMiddleware
from soma.types.base import ObjectID
from soma.types.commit_summary import CertifiedCommitSummary
from soma.types.error import SomaError
from soma.types.system_state import SystemState
from soma.types.transaction import SignedTransaction


def _coin_cursor(text: str) -> CoinCursor:
    """A coin page's cursor: the balance as 16 hex digits (a u64, so any value the
    pattern allows is one), a dash, the object ID."""
    balance, _, object_id = text.partition("-")
    try:
        if len(balance) != 16:
            raise ValueError(balance)
        return CoinCursor(int(balance, 16), ObjectID.from_hex(object_id))
    except (SomaError, ValueError):
        raise ApiError(400, "INVALID_CURSOR", "cursor: not a coin cursor") from None


def _coin_cursor_text(cursor: CoinCursor) -> str:
    return f"{cursor.balance:016x}-{cursor.object_id}"


def certified_summary_json(
    certified: CertifiedCommitSummary, reader: ChainReader
) -> dict[str, Any]:
    """A certified summary as JSON, its signers named by the committee of its epoch."""
    summary = certified.data
    out: dict[str, Any] = to_json(summary)
    out["state_root"] = summary.state_root.hex()
    out["digest"] = str(summary.digest())
    out["signers"] = signer_names(reader, certified)
    out["certificate"] = base64.b64encode(certified.to_bytes()).decode("ascii")
    return out


#: Voting power is a member's share of the committee's stake in basis points.
VOTING_POWER_SCALE = 10_000


def committee_json(state: SystemState) -> dict[str, Any]:
    """The committee of `state`'s epoch as the API shows it: each member's fields, its
    `voting_power` (its stake's share of the total in basis points of 10,000, rounded
    down, so the powers may sum to a little less), `address` (its validator service,
    as `network_address`) and `account` (the validator's own account, which sends its
    validator transactions)."""
    c = state.committee()
    accounts = {v.metadata.authority_name: v.metadata.soma_address for v in state.validators.active}
    members = []
    for member, fields in zip(c.members, to_json(c.members), strict=True):
        members.append(
            {
                **fields,
                "voting_power": member.stake * VOTING_POWER_SCALE // c.total_stake,
                "address": member.network_address,
                "account": str(accounts[member.name]),
            }
        )
    return {"epoch": c.epoch, "total_stake": c.total_stake, "members": members}


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
    reader: ChainReader, faucet: Faucet | None = None, limits: ApiLimits | None = None
) -> FastAPI:
    """The API over `reader`; `/faucet` only with a `faucet` (local networks)."""
    app = FastAPI(title="soma", description="The public API of a soma network.")
    # `RunningApi` reads the limits here for the HTTP server's own settings.
    app.state.limits = limits = ApiLimits() if limits is None else limits
    app.add_middleware(LimitsMiddleware, limits=limits)
    # Outermost: the limits' refusals count too.
    app.add_middleware(RequestMetricsMiddleware, routes=app.router.routes)

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

    @app.exception_handler(FaucetEmptyError)
    async def faucet_empty(_: Request, e: SomaError) -> JSONResponse:
        return error_response(503, e.code, e.message)

    @app.exception_handler(QuorumTimeoutError)
    @app.exception_handler(LocalExecutionTimeoutError)
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

    @app.get("/health", response_model=m.Health, responses=errors(503))
    async def health() -> dict[str, Any]:
        """Whether the node answers, with its epoch and latest commit."""
        status = await reader.status()
        return {"status": "ok", "epoch": status.epoch, "latest_commit": status.latest_commit}

    @app.get("/committee", response_model=m.Committee, responses=errors(503))
    async def committee() -> dict[str, Any]:
        """The validators of the current epoch, with stake, voting power (the share of
        the total stake, in basis points), addresses and accounts."""
        return committee_json((await reader.status()).system_state)

    @app.get("/status", response_model=m.Status, responses=errors(503))
    async def network_status() -> dict[str, Any]:
        """The node's view of the chain: epoch, the last commit executed, the last one
        verified against a certified summary (and the state root after it), how far it
        is behind the highest certified commit it knows, and a fork if it found one."""
        status = await reader.status()
        fork = status.fork
        return {
            "epoch": status.epoch,
            "latest_commit": status.latest_commit,
            "latest_certified_commit": status.latest_certified_commit,
            "state_root": status.state_root.hex(),
            "highest_certified_commit": status.highest_certified_commit,
            "sync_lag": status.sync_lag,
            "fork": None
            if fork is None
            else {
                "index": fork.index,
                "own_digest": str(fork.own_digest),
                "certified_digest": str(fork.certified_digest),
            },
            "transaction_fee": status.transaction_fee,
            "min_validator_stake": status.system_state.parameters.min_validator_stake,
            "epoch_duration_ms": status.system_state.parameters.epoch_duration_ms,
            "epoch_start_timestamp_ms": status.system_state.epoch_start_timestamp_ms,
        }

    @app.get("/supply", response_model=m.Supply, responses=errors(503))
    async def supply() -> dict[str, Any]:
        """Where the network's money is: in live coins, staked by validators, and in
        fees charged this epoch and not yet paid out; `total` is their sum, and equals
        `genesis` (what genesis created) while supply is conserved."""
        found = await reader.supply()
        return {
            "total": found.total,
            "genesis": found.genesis,
            "coins": found.coins,
            "stake": found.stake,
            "pending_fees": found.pending_fees,
        }

    @app.get("/peers", response_model=list[m.PeerView], responses=errors())
    async def peers() -> list[dict[str, Any]]:
        """The node's P2P peers (a fullnode's: validators and other fullnodes)."""
        return [
            {"peer_id": p.peer_id.hex(), "addresses": list(p.addresses), "validator": p.validator}
            for p in reader.peers()
        ]

    @app.get("/summaries/latest", response_model=m.CertifiedSummary, responses=errors(404, 503))
    async def latest_summary() -> dict[str, Any]:
        """The highest certified commit summary the node holds."""
        certified = await reader.certified_summary(None)
        if certified is None:
            raise ApiError(404, "SUMMARY_NOT_FOUND", "no certified summary yet")
        return certified_summary_json(certified, reader)

    @app.get(
        "/summaries/{index}", response_model=m.CertifiedSummary, responses=errors(400, 404, 503)
    )
    async def summary(index: m.IndexPath) -> dict[str, Any]:
        """The certified summary of commit `index` (global)."""
        certified = await reader.certified_summary(index)
        if certified is None:
            raise ApiError(404, "SUMMARY_NOT_FOUND", f"no certified summary of commit {index}")
        return certified_summary_json(certified, reader)

    @app.get("/commits/latest", response_model=m.LatestCommit, responses=errors(503))
    async def latest_commit() -> dict[str, Any]:
        """The index of the latest consensus commit."""
        status = await reader.status()
        return {"epoch": status.epoch, "index": status.latest_commit}

    @app.get(
        "/objects/{object_id}",
        response_model=m.ObjectView,
        responses=errors(400, 404, 503),
    )
    async def get_object(object_id: m.ObjectIdPath) -> dict[str, Any]:
        """An object at its live version."""
        oid = _object_id(object_id)
        found = await reader.get_object(oid)
        if found is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"object {oid} does not exist")
        return object_json(found)

    @app.get(
        "/addresses/{address}/objects",
        response_model=m.ObjectPage,
        responses=errors(400, 503),
    )
    async def owned_objects(
        address: m.AddressPath,
        limit: m.LimitQuery = m.DEFAULT_PAGE,
        cursor: Annotated[
            str | None,
            Query(
                pattern=m.OBJECT_ID_PATTERN,
                max_length=66,
                description="Where the page starts: a `next_cursor`.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """A page of the objects an address owns, by object ID."""
        owner = _address(address)
        start = None if cursor is None else _object_id(cursor)
        page = await reader.owned_objects(owner, start, limit)
        return {
            "objects": [to_json(r) for r in page.items],
            "next_cursor": None if page.next_cursor is None else str(page.next_cursor),
        }

    @app.get("/addresses/{address}/coins", response_model=m.CoinPage, responses=errors(400, 503))
    async def coins(
        address: m.AddressPath,
        limit: m.LimitQuery = m.DEFAULT_PAGE,
        cursor: Annotated[
            str | None,
            Query(
                pattern=m.COIN_CURSOR_PATTERN,
                max_length=83,
                description="Where the page starts: a `next_cursor`.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """A page of an address's coins with their balances, largest first."""
        owner = _address(address)
        start = None if cursor is None else _coin_cursor(cursor)
        page = await reader.coins(owner, start, limit)
        return {
            "coins": [{**to_json(e.ref), "balance": e.balance} for e in page.items],
            "next_cursor": None
            if page.next_cursor is None
            else _coin_cursor_text(page.next_cursor),
        }

    @app.get(
        "/addresses/{address}/balance",
        response_model=m.Balance,
        responses=errors(400, 503),
    )
    async def balance(address: m.AddressPath) -> dict[str, Any]:
        """The sum of an address's coins (from an index: as fast for 10,000 coins as 1)."""
        owner = _address(address)
        total, count = await reader.balance(owner)
        return {"address": str(owner), "balance": total, "coins": count}

    @app.get(
        "/transactions/{digest}",
        response_model=m.TransactionView,
        responses=errors(400, 404, 503),
    )
    async def get_transaction(digest: m.DigestPath) -> dict[str, Any]:
        """A transaction and, once executed, its effects."""
        d = _digest(digest)
        found = None if d is None else await reader.transaction(d)
        if found is None:
            raise ApiError(404, "TRANSACTION_NOT_FOUND", f"transaction {digest} is not known")
        tx, effects = found
        return {
            "digest": str(d),
            "transaction": to_json(tx.data),
            "effects": None if effects is None else effects_json(effects),
        }

    @app.post("/transactions", response_model=m.ExecutionResult, responses=errors(400, 503, 504))
    async def execute(request: m.ExecuteRequest) -> dict[str, Any]:
        """Execute a signed transaction; answers with its effects once certified (and, on
        a fullnode, executed by it too: reads through this API then show it). A
        transaction that executed with a failure status is still a 200: its `status` is
        `failure` and `effects.error` says why (its fee was charged)."""
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
        return execution_result(await reader.execute(tx))

    add_explorer_routes(app, reader)
    add_explorer_page(app)

    if faucet is not None:

        @app.post("/faucet", response_model=m.ExecutionResult, responses=errors(400, 503, 504))
        async def give(request: m.FaucetRequest) -> dict[str, Any]:
            """Send the faucet's grant to an address (local networks)."""
            address = _address(request.address)
            return execution_result(await faucet.give(address))

    document_errors(app)
    for route in app.routes:
        if isinstance(route, APIRoute):
            declare("http", route.path)
    return app
