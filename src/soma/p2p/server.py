"""The P2P gRPC server of one node: a table of methods that components add to.

Discovery adds `ExchangePeers`; state sync adds its own. Every method is unary, takes
one BCS struct and answers one; the server does the rest for all of them alike: the
size caps (the whole server's, and a method's own), a rate limit per calling host and a
cap on concurrent calls (the server is open to anyone: fullnodes are not committee
members, so there is no handshake to check), decoding, and turning a handler's
`SomaError` into a gRPC status whose details are `[CODE] message`. Nothing a caller
sends can raise out of a handler: an unexpected exception is logged and answered
INTERNAL without its text.

Methods are looked up per call, so a component may add its methods before or after the
server starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from soma.consensus.network import tls
from soma.consensus.network.server import now_ms, server_options
from soma.metrics import api as api_metrics
from soma.metrics import sync as metrics
from soma.p2p import wire
from soma.p2p.errors import InvalidP2pRequestError, P2pBusyError, P2pError, P2pRefusedError
from soma.p2p.rate_limit import HostRateLimiter, RateLimit, caller_host
from soma.types.bcs import BcsStruct
from soma.types.error import BcsError, SomaError
from soma.types.tls import TlsIdentity

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=BcsStruct)
if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[bytes, bytes]

#: A handler: the decoded request and the calling host (for logs, or limits of its own).
Handler = Callable[[R, str], Awaitable[BcsStruct]]

#: Calls served at once; more are refused RESOURCE_EXHAUSTED by gRPC itself.
MAX_CONCURRENT_CALLS = 1_000
DEFAULT_RATE_LIMIT = RateLimit()

_STATUS: list[tuple[type[SomaError], grpc.StatusCode]] = [
    (InvalidP2pRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (BcsError, grpc.StatusCode.INVALID_ARGUMENT),
    (P2pRefusedError, grpc.StatusCode.PERMISSION_DENIED),
    (P2pBusyError, grpc.StatusCode.RESOURCE_EXHAUSTED),
]


class RequestTooLargeError(P2pBusyError):
    code = "P2P_REQUEST_TOO_LARGE"


def status_of(error: SomaError) -> grpc.StatusCode:
    """The gRPC status a handler's error is answered with: FAILED_PRECONDITION for any
    error the table does not name (the request was fine; the node cannot serve it)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return grpc.StatusCode.FAILED_PRECONDITION


class _MethodTable(grpc.GenericRpcHandler):
    def __init__(self, methods: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
        self._methods = methods

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        return self._methods.get(handler_call_details.method)


class P2pServer:
    def __init__(
        self,
        *,
        max_request_bytes: int = wire.MAX_REQUEST_BYTES,
        max_response_bytes: int = wire.MAX_RESPONSE_BYTES,
        max_concurrent_calls: int = MAX_CONCURRENT_CALLS,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._max_request_bytes = max_request_bytes
        self._limiter = None if rate_limit is None else HostRateLimiter(rate_limit)
        self._clock = clock
        self._methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._server = grpc.aio.server(
            options=server_options(max_response_bytes, max_receive_bytes=max_request_bytes),
            maximum_concurrent_rpcs=max_concurrent_calls,
        )
        self._server.add_generic_rpc_handlers((_MethodTable(self._methods),))

    def add_unary(
        self,
        name: str,
        request_type: type[R],
        handler: Handler[R],
        *,
        max_request_bytes: int | None = None,
    ) -> None:
        """Serve `handler` as method `name` of the service; its requests are refused
        beyond `max_request_bytes` (at most the server's own cap, the default)."""
        path = wire.method_path(name)
        if path in self._methods:
            raise P2pError(f"the P2P method {name} is already served")
        cap = self._max_request_bytes
        if max_request_bytes is not None:
            cap = min(cap, max_request_bytes)
        self._methods[path] = grpc.unary_unary_rpc_method_handler(
            self._unary(name, request_type, handler, cap)
        )
        api_metrics.declare("p2p", name)

    @property
    def method_names(self) -> list[str]:
        return sorted(path.rpartition("/")[2] for path in self._methods)

    async def start(self, address: str, identity: TlsIdentity) -> int:
        """Listen on `host:port` (port 0 picks a free one) over TLS as `identity` (the
        node's, bound to its peer id) and serve; returns the port. Any node may call:
        callers present no certificate, dialers pin ours to the peer id they dial."""
        port = tls.listen(self._server, address, identity)
        await self._server.start()
        return port

    async def stop(self, grace_s: float = 0.5) -> None:
        await self._server.stop(grace_s)

    def _admit(self, name: str, host: str, request: bytes, cap: int) -> None:
        if self._limiter is not None and not self._limiter.allow(host, self._clock()):
            raise P2pBusyError(f"more than {self._limiter.limit.calls_per_s} calls a second")
        if len(request) > cap:
            raise RequestTooLargeError(f"{name} request of {len(request)} bytes; at most {cap}")

    def _unary(
        self, name: str, kind: type[R], handler: Handler[R], cap: int
    ) -> Callable[[bytes, Context], Awaitable[bytes]]:
        async def handle(request: bytes, context: Context) -> bytes:
            host = caller_host(context.peer())
            error: SomaError
            started = time.perf_counter()
            metrics.P2P_BYTES_RECEIVED.labels(name).inc(len(request))
            try:
                self._admit(name, host, request, cap)
                decoded = kind.from_bytes(request)
                answer = (await handler(decoded, host)).to_bytes()
                metrics.P2P_BYTES_SENT.labels(name).inc(len(answer))
                api_metrics.observe("p2p", name, "OK", time.perf_counter() - started)
                return answer
            except SomaError as e:
                error = e
            except Exception:
                logger.exception("P2P %s from %s failed", name, host)
                api_metrics.observe("p2p", name, "INTERNAL", time.perf_counter() - started)
                await context.abort(grpc.StatusCode.INTERNAL, f"{name}: internal error")
                raise AssertionError("unreachable") from None
            logger.debug("P2P %s from %s refused: %s", name, host, error)
            status = status_of(error)
            api_metrics.observe("p2p", name, status.name, time.perf_counter() - started)
            await context.abort(status, str(error))
            raise AssertionError("unreachable")

        return handle
