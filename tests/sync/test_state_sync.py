"""State sync against validators serving the chain: a follower reaches their certified
summaries with the same state roots; every kind of forged data is refused and its peer
dropped, and the follower completes from honest peers; a restart resumes from the last
commit handed to execution."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from soma.sync import wire
from soma.sync.server import SyncServer
from soma.types.bcs import BcsStruct
from soma.types.commit_summary import (
    CertifiedCommitSummary,
    CommitContents,
    CommitSummary,
    SignedCommitSummary,
)
from soma.types.crypto import AuthorityKeyPair, Ed25519Signature
from soma.types.digests import CommitSummaryDigest
from soma.types.signature_info import Ed25519QuorumSignInfo
from tests.authority.network import TestNetwork
from tests.sync.harness import FAST, Follower, ForgingSyncServer, ServedChain, transfer, until

TARGET = 12


async def _network(tmp_path: Path) -> tuple[TestNetwork, list[ServedChain]]:
    net = TestNetwork(size=4, accounts=4, path=tmp_path / "validators")
    await net.start()
    served = []
    for v in net.validators:
        chain = ServedChain(SyncServer(lambda v=v: v.state))  # type: ignore[misc]
        await chain.start()
        served.append(chain)
    for i in range(4):
        await net.execute(transfer(net, i, (i + 1) % 4, 100 + i))
    await until(lambda: all(s.highest_certified_commit >= TARGET for s in net.live()), "certs")
    return net, served


async def _teardown(net: TestNetwork, served: list[ServedChain], *followers: Follower) -> None:
    for f in followers:
        await f.stop()
        f.close()
    for chain in served:
        await chain.stop()
    await net.stop()
    net.close()


def _reached(follower: Follower, net: TestNetwork, index: int) -> bool:
    state = follower.state
    if state is None or state.verified_summary().index < index:
        return False
    ours = state.store.summaries.summary(index)
    theirs = net.live()[0].store.summaries.summary(index)
    return ours is not None and theirs is not None and ours.digest() == theirs.digest()


async def test_a_follower_syncs_to_the_certified_chain(tmp_path: Path) -> None:
    net, served = await _network(tmp_path)
    follower = Follower(net, tmp_path / "follower", [c.peer() for c in served])
    try:
        await follower.start()
        await until(lambda: _reached(follower, net, TARGET), "sync")
        state = follower.state
        assert state is not None and state.fork is None
        # It holds what it synced, certified, and serves it onwards.
        assert state.store.summaries.certified_summary(TARGET) is not None
        onward = ServedChain(SyncServer(lambda: follower.state))
        await onward.start()
        second = Follower(net, None, [onward.peer()])
        try:
            await second.start()
            await until(lambda: _reached(second, net, TARGET), "sync from the follower")
        finally:
            await second.stop()
            second.close()
            await onward.stop()
        # New commits keep coming: the follower follows.
        await net.execute(transfer(net, 0, 2, 7))
        top = net.live()[0].highest_certified_commit
        await until(lambda: _reached(follower, net, top), "following")
    finally:
        await _teardown(net, served, follower)


# --- forged data ---------------------------------------------------------------------------


def _certify(summary: CommitSummary, keys: list[AuthorityKeyPair], net: TestNetwork) -> BcsStruct:
    signed = [SignedCommitSummary.sign(summary, k, summary.epoch) for k in keys]
    quorum = Ed25519QuorumSignInfo.from_signatures(
        net.committee, [s.auth_signature for s in signed]
    )
    return CertifiedCommitSummary(summary, quorum)


def _forgery(kind: str, net: TestNetwork) -> Callable[[str, BcsStruct], BcsStruct]:
    keys = [v.keys.authority for v in net.validators]

    def forge(what: str, honest: BcsStruct) -> BcsStruct:
        if what == "summaries" and kind != "contents":
            assert isinstance(honest, wire.GetSummariesResponse)
            if not honest.summaries:
                return honest
            first = honest.summaries[0]
            summary = first.data
            if kind == "bad-signature":
                quorum = first.auth_signature
                assert isinstance(quorum, Ed25519QuorumSignInfo)
                broken = Ed25519Signature(bytes(64))
                bad = dataclasses.replace(quorum, signatures=(broken, *quorum.signatures[1:]))
                forged: BcsStruct = CertifiedCommitSummary(summary, bad)
            elif kind == "outsider":
                # Members' slots in the bitmap, signatures by keys outside the committee.
                quorum = first.auth_signature
                assert isinstance(quorum, Ed25519QuorumSignInfo)
                outsiders = [AuthorityKeyPair.generate() for _ in quorum.signatures]
                signatures = tuple(
                    SignedCommitSummary.sign(summary, k, summary.epoch).auth_signature.signature
                    for k in outsiders
                )
                forged = CertifiedCommitSummary(
                    summary, dataclasses.replace(quorum, signatures=signatures)
                )
            elif kind == "below-quorum":
                forged = _certify(summary, keys[:2], net)
            else:  # "no-chain": validly certified, but not the next link
                fake = dataclasses.replace(summary, previous_digest=CommitSummaryDigest.zero())
                forged = _certify(fake, keys[:3], net)
            return wire.GetSummariesResponse((forged, *honest.summaries[1:]))  # type: ignore[arg-type]
        if what == "contents" and kind == "contents":
            assert isinstance(honest, wire.GetContentsResponse)
            if not honest.contents:
                return honest
            first = honest.contents[0]
            txs = first.transactions
            changed = CommitContents(
                first.index, (*txs[:1], *txs[2:], *txs[1:2]) if len(txs) > 2 else txs[:1]
            )
            if changed.digest() == first.digest():
                changed = CommitContents(first.index, ())
            return wire.GetContentsResponse((changed, *honest.contents[1:]))
        return honest

    return forge


@pytest.mark.parametrize(
    "kind", ["bad-signature", "outsider", "below-quorum", "no-chain", "contents"]
)
async def test_forged_data_is_refused_and_its_peer_dropped(tmp_path: Path, kind: str) -> None:
    net, served = await _network(tmp_path)
    forger = ServedChain(ForgingSyncServer(lambda: net.validators[0].state, _forgery(kind, net)))
    await forger.start()
    # The forger alone at first, so it is the one asked; the honest peers join after.
    follower = Follower(net, None, [forger.peer()])
    try:
        await follower.start(FAST)
        sync = follower.sync
        assert sync is not None
        await until(lambda: sync.dropped_peers >= 1, f"the {kind} forger dropped")
        assert follower.state is not None
        assert follower.state.verified_summary().index < TARGET  # nothing forged executed
        follower.peers.extend(c.peer() for c in served)
        await until(lambda: _reached(follower, net, TARGET), f"sync despite {kind}")
        assert sync.peers[forger.key.public_key].banned_until > 0
        assert follower.state.fork is None
    finally:
        await forger.stop()
        await _teardown(net, served, follower)


# --- restart ------------------------------------------------------------------------------------


async def test_a_restarted_follower_resumes_where_it_stopped(tmp_path: Path) -> None:
    net, served = await _network(tmp_path)
    follower = Follower(net, tmp_path / "follower", [c.peer() for c in served])
    try:
        await follower.start()
        await until(lambda: _reached(follower, net, TARGET // 2), "half way")
        await follower.stop()
        follower.close()
        follower = Follower(net, tmp_path / "follower", [c.peer() for c in served])
        executed_before = follower.store.summaries.last_summary()
        assert executed_before is not None and executed_before.index >= TARGET // 2
        await follower.start()
        assert follower.sync is not None and follower.sync.next_to_feed > executed_before.index
        await until(lambda: _reached(follower, net, TARGET), "resumed")
    finally:
        await _teardown(net, served, follower)
