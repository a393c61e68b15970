"""Counting the validator service's requests (`soma.metrics.api`, API `validator`), by
gRPC method and status, with an interceptor, so the handlers stay free of it.

A stream (effects) is counted when it ends, its duration as its latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc

from soma.metrics import api as metrics

API = "validator"


def _status(context: Any, error: BaseException | None) -> str:
    """The call's gRPC status: what the handler aborted with, else OK, CANCELLED (the
    caller went away) or UNKNOWN (the handler raised)."""
    if error is None:
        return "OK"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "CANCELLED" if isinstance(error, asyncio.CancelledError) else "UNKNOWN"


class ServiceMetricsInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        route = str(handler_call_details.method).rpartition("/")[2]
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_counted_unary(route, handler.unary_unary))  # type: ignore[attr-defined,no-any-return]
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_counted_stream(route, handler.unary_stream))  # type: ignore[attr-defined,no-any-return]
        return handler


@contextlib.contextmanager
def _observed(route: str, context: Any) -> Iterator[None]:
    """Count one call of `route` when it ends, with its status and duration."""
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as e:
        error = e
        raise
    finally:
        metrics.observe(API, route, _status(context, error), time.perf_counter() - started)


def _counted_unary(route: str, inner: Any) -> Any:
    async def unary(request: bytes, context: Any) -> bytes:
        with _observed(route, context):
            return await inner(request, context)  # type: ignore[no-any-return]

    return unary


def _counted_stream(route: str, inner: Any) -> Any:
    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        with _observed(route, context):
            async for item in inner(request, context):
                yield item

    return stream
