"""CommitObserver: commits reach the consumer in index order, exactly once, one at a time;
gaps are filled from the store and a restart replays what the consumer has not seen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import pytest

from soma.consensus.commit_observer import CommitObserver, load_committed_subdag
from soma.consensus.dag_state import DagState
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.types.consensus.commit import CommittedSubDag
from tests.consensus.core_harness import Cluster

#: Liveness bound for waits (not a performance assertion).
TIMEOUT_S = 10.0


class Recorder:
    """An async consumer that records what it is given."""

    def __init__(self, pause: int = 0) -> None:
        self.subdags: list[CommittedSubDag] = []
        self.active = 0
        self.max_active = 0
        self._pause = pause

    async def __call__(self, subdag: CommittedSubDag) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            for _ in range(self._pause):
                await asyncio.sleep(0.001)
            self.subdags.append(subdag)
        finally:
            self.active -= 1

    @property
    def indices(self) -> list[int]:
        return [s.commit.index for s in self.subdags]

    async def wait_until(self, check: Callable[[], bool], task: asyncio.Task[None]) -> None:
        async def poll() -> None:
            while not check():
                if task.done():
                    task.result()  # the observer failed: show why
                    raise AssertionError("the observer stopped")
                await asyncio.sleep(0.005)

        await asyncio.wait_for(poll(), TIMEOUT_S)


def signature(subdag: CommittedSubDag) -> tuple[bytes, tuple[bytes, ...]]:
    """What identifies a delivered commit: its digest and its blocks, in order."""
    return bytes(subdag.commit.digest()), tuple(bytes(b.digest()) for b in subdag.blocks)


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the observer; a failure it had is raised here."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def committed_cluster(rounds: int, parameters: ConsensusParameters | None = None) -> Cluster:
    cluster = Cluster(parameters=parameters)
    cluster.run_until_round(rounds)
    return cluster


def assert_delivered(recorder: Recorder, expected: Sequence[CommittedSubDag]) -> None:
    assert recorder.indices == [s.commit.index for s in expected]
    assert [signature(s) for s in recorder.subdags] == [signature(s) for s in expected]


async def test_out_of_order_duplicate_and_gapped_pushes_are_delivered_in_order_once() -> None:
    cluster = Cluster()
    node = cluster.nodes[0]
    # Made before any commit (as at a first start), so there is nothing to replay and
    # every delivery comes from the pushes (and the store, for gaps).
    recorder = Recorder()
    observer = CommitObserver(node.core.dag, recorder, last_processed_index=0)
    cluster.run_until_round(14)
    commits = node.committed
    assert len(commits) >= 9
    assert [s.commit.index for s in commits] == list(range(1, len(commits) + 1))
    by_index = {s.commit.index: s for s in commits}
    last = len(commits)
    # Out of order, duplicated, and with 7..last-1 never pushed at all: the observer must
    # take 1, 2, 5 and 7..last-1 from the store. The last commit is pushed last, so once it
    # is delivered every earlier push has been handled.
    observer.push([by_index[3], by_index[1], by_index[3], by_index[4], by_index[6]])
    observer.push([by_index[6], by_index[4], by_index[1]])
    task = asyncio.get_running_loop().create_task(observer.run())
    try:
        await recorder.wait_until(lambda: 6 in recorder.indices, task)
        observer.push([by_index[2], by_index[6], by_index[5], by_index[3]])
        observer.push([by_index[last]])
        await recorder.wait_until(lambda: last in recorder.indices, task)
    finally:
        await stop(task)
    assert_delivered(recorder, commits)
    assert observer.delivered_index == last


async def test_gap_not_in_the_store_is_an_error_not_a_skip() -> None:
    cluster = committed_cluster(8)
    node = cluster.nodes[0]
    third = node.committed[2]
    # An observer over an empty store: commit 3 arrives, 1 and 2 cannot be found.
    context = node.context
    dag = DagState(context, ConsensusStore.open_memory())
    recorder = Recorder()
    observer = CommitObserver(dag, recorder, last_processed_index=0)
    observer.push([third])
    task = asyncio.get_running_loop().create_task(observer.run())
    try:
        with pytest.raises(LookupError, match="commit 1"):
            await asyncio.wait_for(asyncio.shield(task), TIMEOUT_S)
    finally:
        if not task.done():
            await stop(task)
    assert recorder.subdags == []
    assert observer.delivered_index == 0


@pytest.mark.parametrize("processed", [0, 3, None])
async def test_restart_replays_after_last_processed_then_new_pushes(processed: int | None) -> None:
    cluster = committed_cluster(10)
    node = cluster.nodes[0]
    # A crash and restart: the Core (and its DagState) rebuilt from the store.
    node.restart(cluster.now_ms)
    stored = node.core.dag.last_commit_index
    assert stored == len(node.committed) >= 5
    k = stored if processed is None else processed

    recorder = Recorder()
    observer = CommitObserver(node.core.dag, recorder, last_processed_index=k)
    assert observer.delivered_index == k
    # Commits the consumer already processed, pushed again: never re-delivered.
    observer.push(node.committed[:k])
    task = asyncio.get_running_loop().create_task(observer.run())
    try:
        # With nothing new pushed, the stored commits after k arrive by themselves.
        await recorder.wait_until(lambda: observer.delivered_index == stored, task)
        assert recorder.indices == list(range(k + 1, stored + 1))
        # New commits, made after the restart.
        before = len(node.committed)
        cluster.run_until_round(18)
        fresh = node.committed[before:]
        assert len(fresh) >= 3
        observer.push(node.committed[:k])
        observer.push(fresh)
        newest = fresh[-1].commit.index
        await recorder.wait_until(lambda: newest in recorder.indices, task)
    finally:
        await stop(task)
    assert_delivered(recorder, node.committed[k:])
    assert recorder.indices[0] == k + 1
    assert all(i > k for i in recorder.indices)


async def test_newer_pushes_queued_before_start_do_not_disturb_the_replay() -> None:
    cluster = committed_cluster(8)
    node = cluster.nodes[0]
    node.restart(cluster.now_ms)
    stored = node.core.dag.last_commit_index
    recorder = Recorder()
    observer = CommitObserver(node.core.dag, recorder, last_processed_index=2)
    before = len(node.committed)
    cluster.run_until_round(14)
    fresh = node.committed[before:]
    assert len(fresh) >= 2
    # Pushed before run() starts, newest first: the replay of 3..stored must still come
    # first. The newest commit is pushed again last, so once it is delivered the
    # observer has handled every earlier push.
    observer.push(list(reversed(fresh[:-1])))
    observer.push([fresh[-1]])
    task = asyncio.get_running_loop().create_task(observer.run())
    try:
        await recorder.wait_until(lambda: fresh[-1].commit.index in recorder.indices, task)
    finally:
        await stop(task)
    assert recorder.indices[: stored - 2] == list(range(3, stored + 1))
    assert_delivered(recorder, node.committed[2:])


async def test_slow_consumer_sees_one_commit_at_a_time_in_order() -> None:
    cluster = Cluster()
    node = cluster.nodes[0]
    recorder = Recorder(pause=5)
    observer = CommitObserver(node.core.dag, recorder, last_processed_index=0)
    cluster.run_until_round(16)
    commits = node.committed
    assert len(commits) >= 10
    task = asyncio.get_running_loop().create_task(observer.run())
    try:
        # Pushes keep arriving (in pairs, the later one first) while the consumer is busy.
        order = []
        for i in range(0, len(commits) - 1, 2):
            order += [commits[i + 1], commits[i]]
        for subdag in order:
            observer.push([subdag])
            await asyncio.sleep(0)
        observer.push([commits[-1]])
        await recorder.wait_until(lambda: commits[-1].commit.index in recorder.indices, task)
    finally:
        await stop(task)
    assert recorder.max_active == 1
    assert_delivered(recorder, commits)


async def test_load_committed_subdag_rebuilds_each_commit_from_the_store() -> None:
    # A short GC depth, so the early blocks leave memory and must come from the store.
    parameters = ConsensusParameters(gc_depth=6)
    cluster = committed_cluster(24, parameters)
    node = cluster.nodes[0]
    commits = node.committed
    assert len(commits) >= 15
    first_blocks = [b.reference() for b in commits[1].blocks]
    assert not any(node.core.dag.contains(ref) for ref in first_blocks), "not evicted"

    for dag in (node.core.dag, DagState(node.context, node.store)):
        for original in commits:
            loaded = load_committed_subdag(dag, original.commit.index)
            assert loaded is not None
            assert loaded.commit == original.commit
            assert loaded.commit.index == original.commit.index
            assert loaded.leader == original.leader
            assert loaded.timestamp_ms == original.timestamp_ms
            assert [b.reference() for b in loaded.blocks] == list(original.commit.blocks)
            assert [b.to_bytes() for b in loaded.blocks] == [b.to_bytes() for b in original.blocks]
        assert load_committed_subdag(dag, 0) is None
        assert load_committed_subdag(dag, len(commits) + 1) is None
        assert load_committed_subdag(dag, 10_000) is None


def test_load_committed_subdag_refuses_a_commit_whose_blocks_are_missing() -> None:
    cluster = committed_cluster(8)
    node = cluster.nodes[0]
    store = ConsensusStore.open_memory()
    store.write([], [s.commit for s in node.committed])
    dag = DagState(node.context, store)
    with pytest.raises(LookupError, match="commit 2"):
        load_committed_subdag(dag, 2)
