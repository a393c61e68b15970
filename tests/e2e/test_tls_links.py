"""Node links run over TLS pinned to the committee's keys (or the dialled peer id).

A key outside the committee cannot open a consensus connection: the TLS handshake fails
(UNAVAILABLE, the call never reaches the service), where a member's key goes through
(and a member's link carrying another member's handshake is refused). A server holding
another key is refused by those dialling it: validator service, consensus and P2P.
And a tap on a link reads no transaction: neither a digest nor a signature crosses in
the clear, where the same probe on plain-text links (the test flag) finds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from soma.authority.service import ValidatorService
from soma.authority.service_client import ValidatorCallError, ValidatorClient
from soma.authority.state import AuthorityState
from soma.bench.link_proxy import LinkProxy
from soma.consensus.network import tls, wire
from soma.consensus.network.auth import PeerAuthenticator
from soma.consensus.network.client import ConsensusClient, PeerCallError
from soma.consensus.network.server import channel_options, now_ms
from soma.p2p.client import P2pClient
from soma.p2p.errors import PeerCallError as P2pCallError
from soma.p2p.server import P2pServer
from soma.types.crypto import NetworkKeyPair
from soma.types.tls import TlsIdentity, tls_identity
from soma.types.transaction import TransferCoin
from tests.authority.network import TestNetwork

pytestmark = pytest.mark.asyncio
TARGET = 0
MEMBER = 3


@contextlib.asynccontextmanager
async def started(net: TestNetwork) -> AsyncIterator[TestNetwork]:
    try:
        await net.start()
        yield net
    finally:
        await net.stop()
        net.close()


async def _fetch(
    net: TestNetwork, identity: TlsIdentity, handshake_of: NetworkKeyPair
) -> grpc.StatusCode:
    """One FetchBlocks call to TARGET over a link opened with `identity`, carrying a
    handshake signed as MEMBER with `handshake_of`."""
    member = net.committee.members[TARGET]
    channel = tls.dial(
        member.consensus_address, member.tls_certificate, channel_options(), identity
    )
    auth = PeerAuthenticator(net.committee, MEMBER, handshake_of)
    metadata = ((wire.AUTH_METADATA_KEY, auth.handshake_for(TARGET, now_ms())),)
    request = wire.FetchBlocksRequest((), ()).to_bytes()
    try:
        await channel.unary_unary(wire.FETCH_BLOCKS)(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as e:
        return e.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


async def test_a_key_outside_the_committee_is_refused_at_the_handshake() -> None:
    async with started(TestNetwork(size=4, accounts=2)) as net:
        member_key = net.validators[MEMBER].keys.network
        other_key = net.validators[1].keys.network
        stranger = tls_identity(NetworkKeyPair.generate())
        # The member's own key: the link opens and the call is served.
        assert await _fetch(net, tls_identity(member_key), member_key) is grpc.StatusCode.OK
        # A stranger's key: refused at TLS, whatever it would say inside.
        assert await _fetch(net, stranger, member_key) is grpc.StatusCode.UNAVAILABLE
        # A member's link carrying another member's handshake: refused by the service.
        refused = await _fetch(net, tls_identity(other_key), member_key)
        assert refused is grpc.StatusCode.UNAUTHENTICATED


async def test_a_server_with_another_key_is_refused_by_its_dialers() -> None:
    async with started(TestNetwork(size=4, accounts=2)) as net:
        member = net.committee.members[TARGET]
        impostor_key = NetworkKeyPair.generate()
        impostor = ValidatorService(_never, tls_identity(impostor_key))
        address = f"127.0.0.1:{impostor.bind('127.0.0.1:0')}"
        await impostor.start()
        p2p = P2pServer()
        p2p_address = f"127.0.0.1:{await p2p.start('127.0.0.1:0', tls_identity(impostor_key))}"
        member_key = net.validators[MEMBER].keys.network
        consensus = ConsensusClient(
            net.committee,
            MEMBER,
            PeerAuthenticator(net.committee, MEMBER, member_key),
            tls_identity(member_key),
            peer_addresses={TARGET: address},
        )
        client = ValidatorClient.for_member(member, address)
        p2p_client = P2pClient()
        try:
            with pytest.raises(ValidatorCallError, match="UNAVAILABLE"):
                await client.get_status()
            with pytest.raises(PeerCallError) as consensus_failure:
                await consensus.latest_rounds(TARGET, timeout_s=10)
            assert consensus_failure.value.status is grpc.StatusCode.UNAVAILABLE
            with pytest.raises(P2pCallError) as p2p_failure:
                await p2p_client.call(
                    p2p_address,
                    "Anything",
                    wire.LatestRoundsRequest(),
                    wire.LatestRoundsResponse,
                    timeout_s=10,
                    peer_id=member.network_key,
                )
            assert p2p_failure.value.status is grpc.StatusCode.UNAUTHENTICATED
            # The member's own service, pinned the same way, answers.
            state = net.validators[TARGET].state
            assert state is not None
            own = ValidatorService(lambda: state, tls_identity(net.validators[TARGET].keys.network))
            real = ValidatorClient.for_member(member, f"127.0.0.1:{own.bind('127.0.0.1:0')}")
            await own.start()
            try:
                assert (await real.get_status()).system_state.epoch == 0
            finally:
                await real.close()
                await own.stop(0)
        finally:
            await client.close()
            await consensus.close()
            await p2p_client.close()
            await impostor.stop(0)
            await p2p.stop(0)


def _never() -> AuthorityState:
    raise AssertionError("the impostor's service is never reached")


@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext-control"])
async def test_a_tapped_link_shows_no_transaction(
    monkeypatch: pytest.MonkeyPatch, plaintext: bool
) -> None:
    if plaintext:
        monkeypatch.setenv(tls.PLAINTEXT_LINKS_ENV, "1")
    else:
        monkeypatch.delenv(tls.PLAINTEXT_LINKS_ENV, raising=False)
    tapped = bytearray()
    net = TestNetwork(size=4, accounts=6)
    # Validators 0 and 1 reach each other through tapped proxies; so does the client of
    # validator 1's service.
    consensus = [net.committee.members[i].consensus_address for i in (0, 1)]
    proxies = [LinkProxy(address, tap=tapped.extend) for address in reversed(consensus)]
    service_proxy = LinkProxy(tap=tapped.extend)
    for proxy in [*proxies, service_proxy]:
        await proxy.start()
    net.consensus_routes = {
        0: {1: f"127.0.0.1:{proxies[0].port}"},
        1: {0: f"127.0.0.1:{proxies[1].port}"},
    }
    service: ValidatorService | None = None
    client: ValidatorClient | None = None
    try:
        async with started(net):
            state = net.validators[1].state
            assert state is not None
            identity = tls_identity(net.validators[1].keys.network)
            service = ValidatorService(lambda: state, identity)
            service_proxy.target = f"127.0.0.1:{service.bind('127.0.0.1:0')}"
            await service.start()
            client = ValidatorClient(
                f"127.0.0.1:{service_proxy.port}", net.committee.members[1].tls_certificate
            )
            transactions = []
            for account in range(6):
                gas = net.coin_ref(net.genesis_coin_ids[account])
                recipient = net.addresses[(account + 1) % 6]
                tx = net.sign(account, TransferCoin(gas, 5, recipient), gas)
                assert await client.submit(tx) == tx.digest()
                transactions.append(tx)
            for tx in transactions:
                await net.certificate(tx.digest())
                effects = await client.wait_for_effects(tx.digest())
                assert effects is not None
    finally:
        if client is not None:
            await client.close()
        if service is not None:
            await service.stop(0)
        for proxy in [*proxies, service_proxy]:
            await proxy.stop()
    seen = bytes(tapped)
    assert len(seen) > 10_000  # the links really carried the traffic
    found = [
        tx.digest()
        for tx in transactions
        if bytes(tx.digest()) in seen or bytes(tx.tx_signatures[0].signature) in seen
    ]
    if plaintext:
        assert len(found) == len(transactions)  # the probe finds what is there
    else:
        assert found == []
