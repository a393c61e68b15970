"""The APIs' request metrics: the HTTP API counts by route template (never the raw
path) and status, the limits' refusals included; the validator service counts by
gRPC method and status, refusals included."""

from __future__ import annotations

from typing import Any, cast

import grpc
import httpx

from soma.authority.service_metrics import ServiceMetricsInterceptor
from soma.orchestrator.chain_reader import ChainReader
from soma.rpc.app import create_app
from soma.rpc.limits import ApiLimits
from tests.metrics.samples import sample

ADDRESS = "0x" + "ab" * 32


class _Reader:
    """Answers nothing: the routes these tests call fail before reading, or not at all."""

    async def balance(self, address: Any) -> Any:
        raise AssertionError("not read")


def _count(route: str, status: str, api: str = "http") -> float:
    return sample("soma_api_requests_total", api=api, route=route, status=status)


async def test_http_requests_are_counted_by_route_template_and_status() -> None:
    app = create_app(cast(ChainReader, _Reader()), limits=ApiLimits(rate_per_s=None))
    transport = httpx.ASGITransport(app)
    route = "/addresses/{address}/balance"
    before_bad = _count(route, "400")
    before_unmatched = _count("unmatched", "404")
    before_large = _count("/transactions", "413")
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for _ in range(3):
            assert (await client.get("/addresses/nonsense/balance")).status_code == 400
        assert (await client.get("/no/such/route")).status_code == 404
        big = {"transaction": "A" * (2 * 1024 * 1024)}
        assert (await client.post("/transactions", json=big)).status_code == 413
    assert _count(route, "400") == before_bad + 3
    assert _count("unmatched", "404") == before_unmatched + 1
    # Refused by the limits before routing: still named by its route.
    assert _count("/transactions", "413") == before_large + 1
    # No series is labelled with a raw path.
    assert (
        sample(
            "soma_api_requests_total", api="http", route="/addresses/nonsense/balance", status="400"
        )
        == 0
    )
    assert sample("soma_api_request_duration_seconds_count", api="http", route=route) >= 3


async def test_validator_service_calls_are_counted_by_method_and_status() -> None:
    async def ok(request: bytes, context: Any) -> bytes:
        return request

    async def refuse(request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "[NOPE] refused")
        raise AssertionError("unreachable")

    server = grpc.aio.server(interceptors=(ServiceMetricsInterceptor(),))
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(ok),
        "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Metrics", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    before_ok = _count("Echo", "OK", api="validator")
    before_refused = _count("Refuse", "FAILED_PRECONDITION", api="validator")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/test.Metrics/Echo")
            assert await echo(b"hi") == b"hi"
            assert await echo(b"again") == b"again"
            refuse_call = channel.unary_unary("/test.Metrics/Refuse")
            try:
                await refuse_call(b"x")
            except grpc.aio.AioRpcError as e:
                assert e.code() is grpc.StatusCode.FAILED_PRECONDITION
            else:
                raise AssertionError("the call was not refused")
    finally:
        await server.stop(0)
    assert _count("Echo", "OK", api="validator") == before_ok + 2
    assert _count("Refuse", "FAILED_PRECONDITION", api="validator") == before_refused + 1
