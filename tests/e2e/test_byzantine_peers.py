"""Three honest validator processes and one Byzantine peer: everything the Byzantine one
sends is refused and counted, it is dropped, and the honest three keep committing the
same sequence. Callers outside the committee, or with a forged, replayed or misaddressed
handshake, are refused before any handler runs; a member sending malformed requests is
counted and dropped."""

from __future__ import annotations

import grpc

from soma.bench.cluster import ConsensusCluster
from soma.consensus.network import tls, wire
from soma.consensus.network.auth import PeerAuthenticator
from soma.consensus.network.server import channel_options, now_ms
from soma.types.committee import CommitteeMember
from soma.types.crypto import NetworkKeyPair
from soma.types.tls import TlsIdentity, tls_identity
from tests.e2e.byzantine import ByzantineServer
from tests.e2e.conftest import MakeCluster
from tests.e2e.harness import Load, assert_same_commits, commit_index, wait_all_commit, wait_for

HONEST = [0, 1, 2]
BYZANTINE = 3


async def _honest_cluster(make_cluster: MakeCluster) -> ConsensusCluster:
    return await make_cluster(4, only=HONEST)


def _fetch_request() -> bytes:
    return wire.FetchBlocksRequest((), (0, 0, 0, 0)).to_bytes()


async def test_byzantine_peer_is_refused_dropped_and_the_rest_commit(
    make_cluster: MakeCluster,
) -> None:
    cluster = await _honest_cluster(make_cluster)
    assert cluster.committee is not None
    byzantine = ByzantineServer(
        cluster.committee,
        BYZANTINE,
        cluster.keys[BYZANTINE].protocol,
        cluster.keys[BYZANTINE].network,
    )
    await byzantine.start()
    try:
        load = Load(cluster)
        load.start()
        await wait_all_commit(cluster, HONEST, 20)
        start = await commit_index(cluster, 0)

        async def all_dropped_it() -> bool:
            stats = [await cluster.node_stats(i) for i in HONEST]
            return all(s.drops[BYZANTINE] >= 1 for s in stats)

        await wait_for(all_dropped_it, 60, "every honest validator to drop the Byzantine one")
        await wait_all_commit(cluster, HONEST, start + 20)
        await load.stop()
        await assert_same_commits(cluster, HONEST)
        for i in HONEST:
            stats = await cluster.node_stats(i)
            assert stats.bad_messages[BYZANTINE] >= 20
            # Honest peers never counted against each other.
            assert all(stats.bad_messages[j] == 0 for j in HONEST)
        for kind in ("undecodable_blocks", "bad_signature", "other_author", "no_ancestors"):
            assert byzantine.sent[kind] > 0, kind
        assert load.counters.failed == 0
    finally:
        await byzantine.stop()


async def _call(
    member: CommitteeMember,
    identity: TlsIdentity,
    metadata: tuple[tuple[str, bytes], ...] | None,
) -> grpc.StatusCode:
    """FetchBlocks at `member`'s consensus port, over a TLS link opened as `identity`."""
    channel = tls.dial(
        member.consensus_address, member.tls_certificate, channel_options(), identity
    )
    async with channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            wire.FETCH_BLOCKS
        )
        try:
            await call(_fetch_request(), metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as e:
            return e.code()
        return grpc.StatusCode.OK


async def test_callers_outside_the_committee_are_refused(make_cluster: MakeCluster) -> None:
    cluster = await _honest_cluster(make_cluster)
    committee = cluster.committee
    assert committee is not None
    target = committee.members[0]
    key = wire.AUTH_METADATA_KEY
    # Over a link the member BYZANTINE opened with its own key (TLS admits members):
    link = tls_identity(cluster.keys[BYZANTINE].network)

    # No handshake at all.
    assert await _call(target, link, None) == grpc.StatusCode.UNAUTHENTICATED
    # A stranger claiming to be validator 3, signing with its own key: over its own TLS
    # key it is refused at the handshake; over a member's link, by the service.
    stranger_key = NetworkKeyPair.generate()
    stranger = PeerAuthenticator(committee, BYZANTINE, stranger_key)
    forged = stranger.handshake_for(0, now_ms())
    outsider = tls_identity(stranger_key)
    assert await _call(target, outsider, ((key, forged),)) == grpc.StatusCode.UNAVAILABLE
    assert await _call(target, link, ((key, forged),)) == grpc.StatusCode.UNAUTHENTICATED
    # Garbage in place of a handshake.
    assert await _call(target, link, ((key, b"\x00" * 40),)) == grpc.StatusCode.UNAUTHENTICATED

    member = PeerAuthenticator(committee, BYZANTINE, cluster.keys[BYZANTINE].network)
    # Addressed to another validator, or too old.
    misaddressed = member.handshake_for(1, now_ms())
    assert await _call(target, link, ((key, misaddressed),)) == grpc.StatusCode.UNAUTHENTICATED
    stale = member.handshake_for(0, now_ms() - 10 * 60_000)
    assert await _call(target, link, ((key, stale),)) == grpc.StatusCode.UNAUTHENTICATED
    # A real member's handshake works once, and a replay of it is refused.
    good = member.handshake_for(0, now_ms())
    assert await _call(target, link, ((key, good),)) == grpc.StatusCode.OK
    assert await _call(target, link, ((key, good),)) == grpc.StatusCode.UNAUTHENTICATED

    # Refused callers cost the node nothing: it keeps committing.
    before = await commit_index(cluster, 0)
    await wait_all_commit(cluster, HONEST, before + 5)


async def test_malformed_requests_from_a_member_are_refused_and_it_is_dropped(
    make_cluster: MakeCluster,
) -> None:
    cluster = await _honest_cluster(make_cluster)
    committee = cluster.committee
    assert committee is not None
    target = 0
    listed = committee.members[target]
    member = PeerAuthenticator(committee, BYZANTINE, cluster.keys[BYZANTINE].network)
    codes = []
    identity = tls_identity(cluster.keys[BYZANTINE].network)
    channel = tls.dial(
        listed.consensus_address, listed.tls_certificate, channel_options(), identity
    )
    async with channel:
        for method in (wire.FETCH_BLOCKS, wire.FETCH_COMMITS, wire.SUBSCRIBE_BLOCKS):
            for _ in range(8):
                metadata = ((wire.AUTH_METADATA_KEY, member.handshake_for(target, now_ms())),)
                if method == wire.SUBSCRIBE_BLOCKS:
                    stream = channel.unary_stream(method)(b"\xff\xff", metadata=metadata)
                    try:
                        async for _ in stream:
                            pass
                    except grpc.aio.AioRpcError as e:
                        codes.append(e.code())
                    continue
                call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
                try:
                    await call(b"\xff" * 7, metadata=metadata, timeout=5)
                except grpc.aio.AioRpcError as e:
                    codes.append(e.code())
    assert codes[0] == grpc.StatusCode.INVALID_ARGUMENT
    # After enough invalid requests the member is dropped: refused outright.
    assert codes[-1] == grpc.StatusCode.PERMISSION_DENIED
    assert all(
        c in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED) for c in codes
    )
    stats = await cluster.node_stats(target)
    assert stats.drops[BYZANTINE] == 1
    assert stats.bad_messages[BYZANTINE] >= 20
    before = await commit_index(cluster, target)
    await wait_all_commit(cluster, HONEST, before + 5)
