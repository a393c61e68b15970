"""Synchronizer decisions (whom to ask, bounded, no duplicate in-flight requests,
timeouts) and the answering side, `blocks_for_fetch`."""

from __future__ import annotations

import random

from soma.consensus.parameters import ConsensusParameters
from soma.consensus.synchronizer import Synchronizer, blocks_for_fetch
from soma.types.consensus.block import BlockRef
from soma.types.digests import BlockDigest
from tests.consensus.core_harness import Cluster


def _ref(round: int, author: int, n: int = 0) -> BlockRef:
    return BlockRef(round, author, BlockDigest(bytes([n]) * 32))


def _sync(size: int = 4, **params: int) -> Synchronizer:
    return Synchronizer(0, size, ConsensusParameters(**params), random.Random(1))


def test_asks_the_hinted_peer_first() -> None:
    sync = _sync()
    missing = _ref(5, 2)
    sync.set_missing([missing], hint=3)
    [request] = sync.poll(0)
    assert request.peer == 3
    assert request.refs == (missing,)


def test_without_hint_asks_the_author() -> None:
    sync = _sync()
    sync.set_missing([_ref(5, 2)])
    [request] = sync.poll(0)
    assert request.peer == 2


def test_no_duplicate_in_flight_requests() -> None:
    sync = _sync()
    sync.set_missing([_ref(5, 2)], hint=1)
    assert len(sync.poll(0)) == 1
    # Still missing, reported again, polled again: no second request while one is out.
    sync.set_missing([_ref(5, 2)], hint=3)
    assert sync.poll(10) == []


def test_timeout_moves_on_to_the_next_candidate() -> None:
    sync = _sync(fetch_timeout_ms=100)
    missing = _ref(5, 2)
    sync.set_missing([missing], hint=1)
    [first] = sync.poll(0)
    assert first.peer == 1
    assert sync.next_deadline_ms() == 100
    assert sync.poll(99) == []
    [second] = sync.poll(100)
    # Next known holder: the author.
    assert second.peer == 2
    assert second.request_id != first.request_id


def test_unanswered_response_lets_it_be_asked_again() -> None:
    sync = _sync()
    missing = _ref(5, 2)
    sync.set_missing([missing], hint=1)
    [first] = sync.poll(0)
    sync.on_response(first.request_id)  # answered without the block
    [second] = sync.poll(1)
    assert second.refs == (missing,)
    assert second.peer == 2


def test_after_known_holders_random_peers() -> None:
    sync = _sync(fetch_timeout_ms=10)
    sync.set_missing([_ref(5, 2)], hint=1)
    peers = []
    now = 0
    for _ in range(12):
        requests = sync.poll(now)
        peers += [r.peer for r in requests]
        now += 10
    assert peers[:2] == [1, 2]
    assert set(peers[2:]) <= {1, 2, 3}
    assert 3 in peers  # a random peer eventually
    assert 0 not in peers  # never ourselves


def test_found_blocks_are_no_longer_requested() -> None:
    sync = _sync(fetch_timeout_ms=10)
    a, b = _ref(5, 2), _ref(5, 3)
    sync.set_missing([a, b], hint=1)
    [request] = sync.poll(0)
    assert set(request.refs) == {a, b}
    sync.set_missing([b])  # `a` arrived
    assert sync.missing_count() == 1
    [again] = sync.poll(10)
    assert again.refs == (b,)


def test_requests_per_peer_are_bounded() -> None:
    sync = _sync(max_fetches_per_peer=1, max_blocks_per_fetch=2)
    refs = [_ref(5, 1, n) for n in range(5)]
    sync.set_missing(refs, hint=1)
    requests = sync.poll(0)
    # One request to peer 1 (its limit), at most 2 refs in it; the rest wait.
    to_one = [r for r in requests if r.peer == 1]
    assert len(to_one) == 1
    assert len(to_one[0].refs) == 2
    in_flight = {ref for r in requests for ref in r.refs}
    assert len(in_flight) == sum(len(r.refs) for r in requests)  # no ref twice


def test_references_nobody_serves_do_not_starve_new_ones() -> None:
    """Found by the sweep (seed 368, seven validators, one sending bad blocks): made-up
    ancestors of a Byzantine author's blocks sat at the lowest rounds, were asked first
    on every poll, filled every request slot, and the real missing blocks of a healed
    node were never asked for."""
    sync = _sync(max_fetches_per_peer=1, max_blocks_per_fetch=4, fetch_timeout_ms=10)
    junk = [_ref(r, 1, 200) for r in range(1, 40)]
    sync.set_missing(junk, hint=1)
    now = 0
    for _ in range(30):  # asked, never served: each one tried again and again
        for request in sync.poll(now):
            sync.on_response(request.request_id)
        now += 10
    real = _ref(50, 2, 7)
    sync.set_missing([*junk, real], hint=3)
    asked = {ref for request in sync.poll(now) for ref in request.refs}
    assert real in asked


def test_a_peer_that_answered_without_a_block_is_not_asked_again_at_once() -> None:
    """Found by the sweep (seed 145, after the least-tried-first rule): the answer of a
    peer lacking the block freed the only open request slot, the block went straight
    back to that peer, and two lagging validators asked each other for ever."""
    sync = _sync(max_fetches_per_peer=1)
    wanted, other_2, other_3 = _ref(5, 2), _ref(6, 2, 1), _ref(6, 3, 2)
    sync.set_missing([wanted], hint=1)
    sync.set_missing([wanted, other_2, other_3])
    first = {r.peer: r for r in sync.poll(0)}
    assert first[1].refs == (wanted,)
    sync.on_response(first[1].request_id)  # peer 1 lacks it too
    # Peer 1 is the only one free: it is not asked again, the others are busy.
    assert all(wanted not in r.refs for r in sync.poll(1))
    sync.on_response(first[2].request_id)
    [again] = [r for r in sync.poll(2) if wanted in r.refs]
    assert again.peer == 2


def test_no_deadline_when_idle() -> None:
    sync = _sync()
    assert sync.next_deadline_ms() is None
    sync.set_missing([])
    assert sync.poll(0) == []


def test_blocks_for_fetch_adds_missing_ancestors_in_round_order() -> None:
    cluster = Cluster()
    cluster.run_until_round(8)
    dag = cluster.nodes[0].core.dag
    tip = dag.last_block_of(1).reference()
    # The asker has nothing above genesis.
    blocks = blocks_for_fetch(dag, [tip], [0, 0, 0, 0], cap=1_000)
    refs = [b.reference() for b in blocks]
    assert tip in refs
    assert refs == sorted(refs, key=lambda r: r.sort_key())
    assert all(b.round > 0 for b in blocks)
    # Every ancestor of every returned block is either returned or genesis.
    returned = set(refs)
    for block in blocks:
        for ancestor in block.ancestors:
            assert ancestor.round == 0 or ancestor in returned


def test_blocks_for_fetch_respects_highest_accepted_rounds_and_cap() -> None:
    cluster = Cluster()
    cluster.run_until_round(8)
    dag = cluster.nodes[0].core.dag
    tip = dag.last_block_of(1).reference()
    blocks = blocks_for_fetch(dag, [tip], [5, 5, 5, 5], cap=1_000)
    assert all(b.round > 5 for b in blocks)
    capped = blocks_for_fetch(dag, [tip], [0, 0, 0, 0], cap=3)
    assert len(capped) == 3
    assert tip in [b.reference() for b in capped]


def test_blocks_for_fetch_unknown_refs_give_nothing() -> None:
    cluster = Cluster()
    dag = cluster.nodes[0].core.dag
    assert blocks_for_fetch(dag, [_ref(9, 1)], [0, 0, 0, 0], cap=10) == []
