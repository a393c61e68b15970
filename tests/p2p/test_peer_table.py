"""The discovery table, sans IO: every rule driven by inputs (infos, replies, failures)
and a time, never a clock or a socket."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.p2p.errors import P2pRefusedError
from soma.p2p.node_info import InvalidNodeInfoError, SignedNodeInfo
from soma.p2p.parameters import DiscoveryParameters
from soma.p2p.peer_table import DialTarget, Offer, PeerTable
from soma.types.crypto import Ed25519Signature

from .support import T0, info, key, table

P = DiscoveryParameters()


def forged(i: int, timestamp_ms: int = T0) -> SignedNodeInfo:
    """Node i's info with a signature that does not verify."""
    good = info(i, timestamp_ms)
    flipped = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    return SignedNodeInfo(good.info, Ed25519Signature(flipped))


def known_ids(t: PeerTable, now: int = T0) -> set[int]:
    ids = {key(i).public_key: i for i in range(40)}
    return {ids[p.peer_id] for p in t.peers(now)}


# --- taking one info -----------------------------------------------------------------


def test_a_valid_info_is_taken_and_listed() -> None:
    t = table()
    assert t.offer(info(1), T0) is Offer.ACCEPTED
    [peer] = t.peers(T0)
    assert peer.peer_id == key(1).public_key
    assert peer.addresses == ("node-1:1001",) and peer.timestamp_ms == T0
    assert not peer.committee


def test_a_bad_signature_is_refused() -> None:
    t = table()
    assert t.offer(forged(1), T0) is Offer.INVALID
    assert t.peers(T0) == []


def test_an_info_signed_by_another_key_is_refused() -> None:
    good = info(1)
    claimed = dataclasses.replace(good.info, peer_id=key(2).public_key)
    assert table().offer(SignedNodeInfo(claimed, good.signature), T0) is Offer.INVALID


def test_a_timestamp_beyond_30_s_ahead_is_refused() -> None:
    t = table()
    assert t.offer(info(1, T0 + P.max_future_ms + 1), T0) is Offer.FROM_FUTURE
    assert t.offer(info(1, T0 + P.max_future_ms), T0) is Offer.ACCEPTED


def test_our_own_id_is_refused() -> None:
    t = table(0)
    assert t.offer(info(0), T0) is Offer.OWN
    with pytest.raises(InvalidNodeInfoError):
        t.handle_request(info(0), T0)


def test_only_a_strictly_newer_info_replaces_the_one_held() -> None:
    t = table()
    assert t.offer(info(1, T0, port=5000), T0) is Offer.ACCEPTED
    assert t.offer(info(1, T0, port=6000), T0) is Offer.NOT_NEWER
    assert t.offer(info(1, T0 - 1, port=6000), T0) is Offer.NOT_NEWER
    assert t.peers(T0)[0].addresses == ("node-1:5000",)
    assert t.offer(info(1, T0 + 1, port=7000), T0) is Offer.ACCEPTED
    assert t.peers(T0)[0].addresses == ("node-1:7000",)


def test_stale_infos_expire_but_committee_members_never_do() -> None:
    committee = {key(9).public_key: "validator-9:1"}
    t = table(committee=committee)
    assert t.offer(info(1), T0) is Offer.ACCEPTED
    assert t.offer(info(9), T0) is Offer.ACCEPTED
    t.expire(T0 + P.expiry_ms - 1)
    assert known_ids(t) == {1, 9}
    later = T0 + P.expiry_ms
    t.expire(later)
    assert known_ids(t, later) == {9}
    assert t.info_of(key(9).public_key) is not None  # the committee's info is kept
    # An info as old as that is refused when offered again; a committee member's is not.
    assert t.offer(info(1), later) is Offer.EXPIRED
    assert t.offer(info(9, T0 + 1), later) is Offer.ACCEPTED


def test_the_cap_forgets_the_oldest_outside_the_committee() -> None:
    committee = {key(20).public_key: "v:1", key(21).public_key: "v:2"}
    t = table(parameters=dataclasses.replace(P, max_known_peers=5), committee=committee)
    t.offer(info(20, T0 - 1000), T0)
    t.offer(info(21, T0 - 999), T0)
    for i in range(1, 11):
        t.offer(info(i, T0 + i), T0 + 100)
    # The two committee members (oldest, but kept) and the three newest of the rest.
    assert known_ids(t, T0 + 100) == {8, 9, 10, 20, 21}
    held = [p for p in t.peers(T0 + 100) if p.timestamp_ms is not None]
    assert len(held) == 5


# --- failures and drops --------------------------------------------------------------


def test_a_peer_failing_repeatedly_is_dropped_for_a_while() -> None:
    t = table()
    t.offer(info(1), T0)
    target = DialTarget("node-1:1001", key(1).public_key)
    for _ in range(P.max_failures - 1):
        assert not t.record_failure(target, T0)
    assert t.record_failure(target, T0)
    assert t.peers(T0) == [] and t.targets(T0) == []
    # Not re-added from gossip while dropped...
    assert t.offer(info(1, T0 + 1), T0 + 1) is Offer.DROPPED
    # ...and taken again once the time is up.
    after = T0 + P.failure_ban_ms
    t.expire(after)
    assert t.offer(info(1, T0 + 2), after) is Offer.ACCEPTED


def test_a_success_resets_the_failure_count() -> None:
    t = table()
    t.offer(info(1), T0)
    target = DialTarget("node-1:1001", key(1).public_key)
    for _ in range(P.max_failures - 1):
        t.record_failure(target, T0)
    assert t.handle_reply(target, info(1, T0 + 1), [], T0 + 1).invalid is None
    assert not t.record_failure(target, T0 + 2)


def test_a_dropped_committee_member_comes_back() -> None:
    committee = {key(3).public_key: "validator-3:1"}
    t = table(committee=committee)
    target = DialTarget("validator-3:1", key(3).public_key)
    assert t.targets(T0) == [target]
    for _ in range(P.max_failures):
        t.record_failure(target, T0)
    assert t.targets(T0) == [] and t.peers(T0) == []
    assert t.targets(T0 + P.failure_ban_ms) == [target]


def test_a_reply_relaying_a_bad_signature_drops_the_sender_and_takes_nothing() -> None:
    t = table()
    target = DialTarget("node-1:1001", key(1).public_key)
    outcome = t.handle_reply(target, info(1), [info(2), forged(3)], T0)
    assert outcome.accepted == 0 and outcome.invalid is not None
    assert "invalid info" in outcome.invalid
    assert known_ids(t) == set()
    assert t.is_dropped(key(1).public_key, T0)
    # Its infos are refused from anyone for `invalid_ban_ms`.
    assert t.offer(info(1, T0 + 1), T0 + 1) is Offer.DROPPED
    assert t.is_dropped(key(1).public_key, T0 + P.invalid_ban_ms - 1)
    assert not t.is_dropped(key(1).public_key, T0 + P.invalid_ban_ms)


def test_a_reply_with_too_many_entries_is_refused() -> None:
    t = table(parameters=dataclasses.replace(P, max_peers_per_reply=2))
    target = DialTarget("node-1:1001", key(1).public_key)
    outcome = t.handle_reply(target, info(1), [info(2), info(3), info(4)], T0)
    assert outcome.invalid is not None and "at most 2" in outcome.invalid
    assert known_ids(t) == set()


def test_another_peer_at_an_address_drops_the_address_not_the_peer() -> None:
    t = table(seeds=(DialTarget("seed:1", key(5).public_key),))
    [target] = t.targets(T0)
    assert target == DialTarget("seed:1", key(5).public_key)
    outcome = t.handle_reply(target, info(6), [], T0)
    assert outcome.invalid is not None and "not" in outcome.invalid
    assert t.is_dropped("seed:1", T0) and not t.is_dropped(key(5).public_key, T0)
    assert t.targets(T0) == []
    # Peer 5 is still welcome, and dialled where it says it is.
    assert t.offer(info(5), T0) is Offer.ACCEPTED
    assert t.targets(T0) == [DialTarget("node-5:1005", key(5).public_key)]


def test_a_seed_without_an_id_is_known_by_the_id_it_answers_with() -> None:
    seed = DialTarget("seed:1")
    t = table(seeds=(seed,))
    assert t.targets(T0) == [seed]
    assert t.handle_reply(seed, info(5), [info(6)], T0).accepted == 2
    assert known_ids(t) == {5, 6}
    # From now on the seed is peer 5; its seed address is one of its addresses.
    assert [p.addresses for p in t.peers(T0) if p.peer_id == key(5).public_key] == [
        ("node-5:1005", "seed:1")
    ]
    assert DialTarget("seed:1") not in t.targets(T0)


def test_a_failing_peer_is_tried_at_its_next_address() -> None:
    committee = {key(5).public_key: "validator-5:1"}
    t = table(committee=committee)
    t.offer(info(5), T0)  # says node-5:1005; the committee says validator-5:1
    first = t.targets(T0)
    t.record_failure(first[0], T0)
    second = t.targets(T0)
    assert {first[0].address, second[0].address} == {"node-5:1005", "validator-5:1"}


# --- the server side -----------------------------------------------------------------


def test_a_request_teaches_the_caller_and_answers_a_sample_without_it() -> None:
    t = table(parameters=dataclasses.replace(P, max_peers_per_reply=3))
    for i in range(2, 10):
        t.offer(info(i), T0)
    answer = t.handle_request(info(1), T0)
    assert len(answer) == 3
    assert key(1).public_key not in {a.peer_id for a in answer}
    assert 1 in known_ids(t)


def test_a_request_with_a_bad_info_or_from_a_dropped_peer_is_refused() -> None:
    t = table()
    with pytest.raises(InvalidNodeInfoError):
        t.handle_request(forged(1), T0)
    assert known_ids(t) == set()
    t.handle_reply(DialTarget("node-2:1002", key(2).public_key), info(2), [forged(3)], T0)
    with pytest.raises(P2pRefusedError):
        t.handle_request(info(2, T0 + 1), T0 + 1)


# --- our own info --------------------------------------------------------------------


def test_our_info_is_signed_again_once_old_and_its_timestamp_only_grows() -> None:
    t = table(0)
    first = t.own_info(T0)
    first.verify()
    assert t.own_info(T0 + P.resign_interval_ms - 1) is first
    second = t.own_info(T0 + P.resign_interval_ms)
    assert second.timestamp_ms == T0 + P.resign_interval_ms
    # A clock stepping back still gives a newer info once the interval has passed.
    t2 = table(0, parameters=dataclasses.replace(P, resign_interval_ms=1))
    a = t2.own_info(T0)
    b = t2.own_info(T0 + 5)
    assert b.timestamp_ms > a.timestamp_ms


# --- properties ----------------------------------------------------------------------

offers = st.lists(
    st.tuples(
        st.integers(1, 6),  # which node
        st.integers(-P.expiry_ms - 5_000, P.max_future_ms + 5_000),  # stamp from now
        st.booleans(),  # a valid signature
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(offers=offers, cap=st.integers(1, 6))
def test_the_table_holds_the_newest_acceptable_info_of_each_peer(
    offers: list[tuple[int, int, bool]], cap: int
) -> None:
    now = T0
    t = table(parameters=dataclasses.replace(P, max_known_peers=cap))
    best: dict[int, int] = {}
    for node, delta, valid in offers:
        stamp = now + delta
        t.offer(info(node, stamp) if valid else forged(node, stamp), now)
        if valid and delta <= P.max_future_ms and stamp + P.expiry_ms > now:
            best[node] = max(best.get(node, stamp), stamp)
    held = {p.peer_id: p.timestamp_ms for p in t.peers(now)}
    assert len(held) <= cap
    for peer_id, stamp in held.items():
        node = next(i for i in range(1, 7) if key(i).public_key == peer_id)
        assert stamp is not None and stamp <= best[node]
    # Only the cap forgets an acceptable info, and it forgets the oldest.
    forgotten = [s for n, s in best.items() if key(n).public_key not in held]
    if len(held) < cap:
        assert forgotten == []
    else:
        oldest_kept = min(stamp for stamp in held.values() if stamp is not None)
        assert all(stamp <= oldest_kept for stamp in forgotten)


# --- many tables, messages passed in memory ----------------------------------------


def exchange_in_memory(tables: list[PeerTable], rounds: int, start: int = T0) -> int:
    """Run rounds in which every table asks its targets (calls are direct method
    calls); returns the round after which every table knew every other node, or -1."""
    by_address = {f"node-{i}:{1000 + i}": t for i, t in enumerate(tables)}
    everyone = {t.own_id for t in tables}
    for r in range(rounds):
        now = start + r * P.interval_ms
        for t in tables:
            for target in t.targets(now):
                peer = by_address[target.address]
                answer = peer.handle_request(t.own_info(now), now)
                t.handle_reply(target, peer.own_info(now), answer, now)
        if all({p.peer_id for p in t.peers(now)} == everyone - {t.own_id} for t in tables):
            return r + 1
    return -1


@pytest.mark.parametrize("seed", range(5))
def test_a_chain_of_single_seeds_learns_everyone_within_a_few_rounds(seed: int) -> None:
    size = 16
    tables = [
        table(i, seeds=(DialTarget(f"node-{(i + 1) % size}:{1000 + (i + 1) % size}"),), seed=seed)
        for i in range(size)
    ]
    rounds = exchange_in_memory(tables, rounds=30)
    assert 0 < rounds <= 6
