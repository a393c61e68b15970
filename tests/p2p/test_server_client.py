"""The P2P server and client over gRPC on 127.0.0.1: round trips, size caps, typed
errors on both sides, rate limits, methods added by other components."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from soma.consensus.local_committee import free_ports
from soma.p2p import wire
from soma.p2p.client import P2pClient
from soma.p2p.errors import (
    InvalidP2pRequestError,
    P2pError,
    P2pRefusedError,
    PeerCallError,
)
from soma.p2p.rate_limit import RateLimit
from soma.p2p.server import P2pServer
from soma.types.bcs import BcsStruct, u32
from soma.types.error import SomaError
from soma.types.tls import tls_identity

from .support import T0, info, key

#: The servers' TLS identity (any node key will do here).
IDENTITY = tls_identity(key(7))


class Echo(BcsStruct):
    data: bytes


class Other(BcsStruct):
    number: u32
    text: str


class Served:
    def __init__(self, server: P2pServer, address: str, client: P2pClient) -> None:
        self.server = server
        self.address = address
        self.client = client

    async def echo(self, data: bytes, method: str = "Echo", **kwargs: object) -> Echo:
        return await self.client.call(
            self.address,
            method,
            Echo(data),
            Echo,
            timeout_s=10.0,
            **kwargs,  # type: ignore[arg-type]
        )


async def _echo(request: Echo, host: str) -> Echo:
    return request


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    server = P2pServer(max_request_bytes=64 * 1024)
    server.add_unary("Echo", Echo, _echo, max_request_bytes=1024)
    port = await server.start("127.0.0.1:0", IDENTITY)
    client = P2pClient()
    try:
        yield Served(server, f"127.0.0.1:{port}", client)
    finally:
        await client.close()
        await server.stop()


async def call_error(served: Served, data: bytes = b"x", method: str = "Echo") -> PeerCallError:
    with pytest.raises(PeerCallError) as info:
        await served.echo(data, method)
    return info.value


async def test_a_round_trip(served: Served) -> None:
    assert (await served.echo(b"hello")).data == b"hello"
    assert served.server.method_names == ["Echo"]


def test_the_exchange_messages_survive_their_bytes() -> None:
    request = wire.ExchangePeersRequest(info(1))
    assert wire.ExchangePeersRequest.from_bytes(request.to_bytes()) == request
    response = wire.ExchangePeersResponse(info(2), (info(3), info(4, T0 + 5)))
    assert wire.ExchangePeersResponse.from_bytes(response.to_bytes()) == response
    assert (
        response.to_bytes()
        == info(2).to_bytes() + b"\x02" + info(3).to_bytes() + info(4, T0 + 5).to_bytes()
    )


async def test_a_request_over_the_methods_cap_is_refused(served: Served) -> None:
    error = await call_error(served, b"x" * 2000)
    assert error.status is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.remote_code == "P2P_REQUEST_TOO_LARGE" and not error.malformed


async def test_a_request_over_the_servers_cap_is_refused_by_grpc(served: Served) -> None:
    error = await call_error(served, b"x" * 100_000)
    assert error.status is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_request_that_does_not_decode_is_invalid(served: Served) -> None:
    with pytest.raises(PeerCallError) as info:
        await served.client.call(served.address, "Echo", Other(1, "x"), Echo, timeout_s=10)
    assert info.value.status is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.remote_code is not None and info.value.remote_code.startswith("BCS")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidP2pRequestError("no"), grpc.StatusCode.INVALID_ARGUMENT, "P2P_INVALID_REQUEST"),
        (P2pRefusedError("no"), grpc.StatusCode.PERMISSION_DENIED, "P2P_REFUSED"),
        (SomaError("cannot"), grpc.StatusCode.FAILED_PRECONDITION, "SOMA_ERROR"),
    ],
)
async def test_a_handlers_error_comes_back_typed(
    served: Served, error: SomaError, status: grpc.StatusCode, code: str
) -> None:
    async def refuse(request: Echo, host: str) -> Echo:
        raise error

    served.server.add_unary("Refuse", Echo, refuse)
    failure = await call_error(served, method="Refuse")
    assert failure.status is status and failure.remote_code == code
    assert served.address in str(failure) and not failure.malformed


async def test_an_unexpected_exception_is_internal_without_its_text(served: Served) -> None:
    async def crash(request: Echo, host: str) -> Echo:
        raise RuntimeError("secret detail")

    served.server.add_unary("Crash", Echo, crash)
    failure = await call_error(served, method="Crash")
    assert failure.status is grpc.StatusCode.INTERNAL and "secret" not in str(failure)


async def test_an_answer_that_does_not_decode_is_malformed(served: Served) -> None:
    async def wrong(request: Echo, host: str) -> Other:
        return Other(7, "not an echo")

    served.server.add_unary("Wrong", Echo, wrong)
    failure = await call_error(served, method="Wrong")
    assert failure.malformed and failure.status is None


async def test_an_answer_over_the_callers_cap_is_malformed(served: Served) -> None:
    with pytest.raises(PeerCallError) as failure:
        await served.echo(b"y" * 500, max_response_bytes=100)
    assert failure.value.malformed and "at most 100" in str(failure.value)


async def test_an_unknown_method_is_unimplemented(served: Served) -> None:
    failure = await call_error(served, method="Nothing")
    assert failure.status is grpc.StatusCode.UNIMPLEMENTED


async def test_a_call_past_its_deadline_fails_without_blaming_the_answer(served: Served) -> None:
    never = asyncio.Event()

    async def hang(request: Echo, host: str) -> Echo:
        await never.wait()
        return request

    served.server.add_unary("Hang", Echo, hang)
    with pytest.raises(PeerCallError) as failure:
        await served.client.call(served.address, "Hang", Echo(b""), Echo, timeout_s=0.2)
    assert failure.value.status is grpc.StatusCode.DEADLINE_EXCEEDED
    assert not failure.value.malformed


async def test_an_unreachable_peer_is_a_typed_failure() -> None:
    client = P2pClient()
    [port] = free_ports(1)
    try:
        with pytest.raises(PeerCallError) as failure:
            await client.call(
                f"127.0.0.1:{port}",
                "Echo",
                Echo(b""),
                Echo,
                timeout_s=5,
                peer_id=key(1).public_key,
            )
    finally:
        await client.close()
    assert failure.value.status is grpc.StatusCode.UNAVAILABLE
    assert failure.value.peer_id == key(1).public_key


async def test_a_method_is_served_once(served: Served) -> None:
    with pytest.raises(P2pError, match="already"):
        served.server.add_unary("Echo", Echo, _echo)


async def test_calls_beyond_a_hosts_rate_are_refused() -> None:
    server = P2pServer(rate_limit=RateLimit(calls_per_s=2), clock=lambda: T0)
    server.add_unary("Echo", Echo, _echo)
    port = await server.start("127.0.0.1:0", IDENTITY)
    client = P2pClient()
    served = Served(server, f"127.0.0.1:{port}", client)
    try:
        await served.echo(b"1")
        await served.echo(b"2")
        failure = await call_error(served)
    finally:
        await client.close()
        await server.stop()
    assert failure.status is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.remote_code == "P2P_BUSY"


async def test_the_client_keeps_a_bounded_number_of_channels() -> None:
    servers = []
    client = P2pClient(max_channels=2)
    try:
        for _ in range(3):
            server = P2pServer()
            server.add_unary("Echo", Echo, _echo)
            servers.append((server, await server.start("127.0.0.1:0", IDENTITY)))
        for _, port in servers:
            answer = await client.call(f"127.0.0.1:{port}", "Echo", Echo(b"z"), Echo, timeout_s=10)
            assert answer.data == b"z"
        assert len(client._channels) == 2
    finally:
        await client.close()
        for server, _ in servers:
            await server.stop()


async def test_a_link_is_pinned_to_the_peer_id_its_certificate_proves(served: Served) -> None:
    """The server's certificate is bound to key 7: a call expecting key 7 goes through,
    one expecting another key is refused before any request is sent, and the open
    link to key 7 is never lent to it."""
    assert (await served.echo(b"a", peer_id=key(7).public_key)).data == b"a"
    assert served.client.peer_id_at(served.address) == key(7).public_key
    with pytest.raises(PeerCallError) as failure:
        await served.echo(b"b", peer_id=key(8).public_key)
    assert failure.value.status is grpc.StatusCode.UNAUTHENTICATED
    assert (await served.echo(b"c", peer_id=key(7).public_key)).data == b"c"
