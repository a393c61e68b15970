"""CommitObserver: hands committed sub-DAGs to their consumer in commit-index order,
exactly once.

The consumer (execution, or a benchmark) says which commit it processed last when
consensus starts; the observer first replays the stored commits after that one (with
their blocks, from the consensus store), then passes on new commits as Core makes them,
skipping any it already delivered. One task delivers, so the consumer sees one commit at a
time, in order, even when it is slower than consensus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from soma.consensus.dag_state import DagState
from soma.types.consensus.commit import CommittedSubDag

logger = logging.getLogger(__name__)

CommitConsumer = Callable[[CommittedSubDag], Awaitable[None]]


def load_committed_subdag(dag: DagState, index: int) -> CommittedSubDag | None:
    """Rebuild commit `index` and its blocks from the store."""
    for commit in dag.store.scan_commits(index, index):
        blocks = dag.get_blocks(list(commit.blocks))
        if any(b is None for b in blocks):
            raise LookupError(f"commit {index} names blocks missing from the store")
        found = tuple(b for b in blocks if b is not None)
        return CommittedSubDag(commit, commit.leader, found, commit.timestamp_ms)
    return None


class CommitObserver:
    def __init__(self, dag: DagState, consumer: CommitConsumer, last_processed_index: int) -> None:
        self._dag = dag
        self._consumer = consumer
        self._delivered = last_processed_index
        self._queue: asyncio.Queue[CommittedSubDag] = asyncio.Queue()
        self._replay_to = dag.last_commit_index

    @property
    def delivered_index(self) -> int:
        return self._delivered

    def push(self, subdags: list[CommittedSubDag]) -> None:
        for subdag in subdags:
            self._queue.put_nowait(subdag)

    async def run(self) -> None:
        # Stored commits the consumer has not seen.
        while self._delivered < self._replay_to:
            subdag = load_committed_subdag(self._dag, self._delivered + 1)
            if subdag is None:
                break
            await self._deliver(subdag)
        while True:
            subdag = await self._queue.get()
            await self._deliver(subdag)

    async def _deliver(self, subdag: CommittedSubDag) -> None:
        index = subdag.commit.index
        if index <= self._delivered:
            return
        if index != self._delivered + 1:
            # A gap: fill it from the store (commits are stored before they are pushed).
            for missing in range(self._delivered + 1, index):
                earlier = load_committed_subdag(self._dag, missing)
                if earlier is None:
                    raise LookupError(f"commit {missing} is not in the store")
                await self._consumer(earlier)
                self._delivered = missing
        await self._consumer(subdag)
        self._delivered = index
