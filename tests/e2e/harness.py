"""Helpers for the multi-process consensus tests: a running cluster, load through the
validators' load ports, waiting for progress, and checks over the stores afterwards."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc

from soma.bench.cluster import ConsensusCluster
from soma.bench.consensus_bench import TransactionFactory
from soma.bench.load_service import SUBMIT, SubmitOutcome, SubmitRequest, SubmitResponse
from soma.consensus.store import ConsensusStore


@dataclasses.dataclass
class LoadCounters:
    committed: int = 0
    failed: int = 0
    queue_full: int = 0


class Load:
    """Batches of small transactions sent round-robin to the live validators, a few in
    flight per validator, until stopped."""

    def __init__(self, cluster: ConsensusCluster, batch: int = 50, in_flight: int = 2) -> None:
        self.cluster = cluster
        self.batch = batch
        self.in_flight = in_flight
        self.counters = LoadCounters()
        self._factory = TransactionFactory(64)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.cluster.size):
            for _ in range(self.in_flight):
                self._tasks.append(loop.create_task(self._worker(index)))

    async def _worker(self, index: int) -> None:
        while True:
            node = self.cluster.nodes[index]
            if node not in self.cluster.live() or node.channel is None:
                await asyncio.sleep(0.2)
                continue
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = node.channel.unary_unary(SUBMIT)
            request = SubmitRequest(tuple(self._factory.batch(self.batch))).to_bytes()
            try:
                data = await call(request, timeout=30)
            except grpc.aio.AioRpcError:
                self.counters.failed += 1
                await asyncio.sleep(0.2)
                continue
            outcome = SubmitResponse.from_bytes(data).outcome
            if outcome == SubmitOutcome.COMMITTED:
                self.counters.committed += self.batch
            elif outcome == SubmitOutcome.QUEUE_FULL:
                self.counters.queue_full += 1
            else:
                self.counters.failed += 1

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, poll_s: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(grpc.aio.AioRpcError):
            if await check():
                return
        await asyncio.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def commit_index(cluster: ConsensusCluster, index: int) -> int:
    return (await cluster.node_stats(index)).last_commit_index


async def wait_all_commit(
    cluster: ConsensusCluster, indices: Sequence[int], at_least: int, timeout_s: float = 60
) -> None:
    async def check() -> bool:
        return all([await commit_index(cluster, i) >= at_least for i in indices])

    await wait_for(check, timeout_s, f"validators {list(indices)} to reach commit {at_least}")


async def wait_guard_done(cluster: ConsensusCluster, index: int, timeout_s: float = 30) -> int:
    """The round validator `index`'s amnesia guard learned, once it has run."""

    async def done() -> bool:
        return (await cluster.node_stats(index)).recovered_own_round is not None

    await wait_for(done, timeout_s, f"validator {index}'s amnesia guard", poll_s=0.05)
    round = (await cluster.node_stats(index)).recovered_own_round
    assert round is not None
    return round


async def assert_same_commits(cluster: ConsensusCluster, indices: Sequence[int]) -> int:
    """Every listed validator holds the same commit digests up to the lowest last commit
    among them; returns that index."""
    tops = [await commit_index(cluster, i) for i in indices]
    top = min(tops)
    assert top > 0, f"no commits yet: {tops}"
    chains = {i: await cluster.commit_digests(i, 1, top) for i in indices}
    reference = chains[indices[0]]
    assert len(reference) == top
    for i, chain in chains.items():
        assert chain == reference, f"validator {i} disagrees with {indices[0]} below {top}"
    return top


def assert_no_equivocation(stores: Sequence[Path]) -> None:
    """No authority has two different blocks for one round in any store (run after the
    processes stopped)."""
    seen: dict[tuple[int, int], bytes] = {}
    for path in stores:
        store = ConsensusStore.open_rocksdb(path)
        try:
            for block in store.scan_blocks_from(1):
                key = (block.round, block.author)
                digest = bytes(block.digest())
                other = seen.setdefault(key, digest)
                assert other == digest, (
                    f"authority {block.author} signed two blocks in round {block.round}"
                )
        finally:
            store.close()


def rounds_of(store_path: Path, author: int) -> list[int]:
    store = ConsensusStore.open_rocksdb(store_path)
    try:
        counts = collections.Counter(
            b.round for b in store.scan_blocks_from(1) if b.author == author
        )
        return sorted(counts)
    finally:
        store.close()
