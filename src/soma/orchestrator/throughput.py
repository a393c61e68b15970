"""Transactions per second over the last minutes, from the executed commits' records.

Each commit carries its consensus timestamp and how many user transactions it
executed (`soma.authority.commit_records`), so the chain's throughput over a window is
the user transactions of the commits whose timestamps fall in it, in buckets of a few
seconds. Commits never change once executed, so their records are kept between calls
(the oldest dropped beyond `MAX_KEPT`), and a refresh every second or two
reads only the commits executed since the last one.
"""

from __future__ import annotations

import dataclasses

from soma.authority import service_wire as wire
from soma.orchestrator.chain_reader import ChainReader

#: The longest window a chart may ask for, and the most records kept for it.
MAX_WINDOW_MS = 15 * 60 * 1000
MAX_KEPT = 50_000


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    transactions: int
    commits: int


@dataclasses.dataclass(frozen=True, slots=True)
class ThroughputSeries:
    """User transactions per bucket of `bucket_ms` over [`end_ms` - window, `end_ms`)."""

    end_ms: int
    bucket_ms: int
    buckets: list[Bucket]

    @property
    def transactions(self) -> int:
        return sum(b.transactions for b in self.buckets)


class Throughput:
    """Throughput series over one reader's commits, with their records cached."""

    def __init__(self, reader: ChainReader) -> None:
        self._reader = reader
        self._records: dict[int, wire.CommitRecord] = {}

    async def series(
        self, latest: int, end_ms: int, window_ms: int, bucket_ms: int
    ) -> ThroughputSeries:
        """Buckets over the window ending at `end_ms`, from the commits up to `latest`
        (the last executed, global index) whose timestamps fall in it."""
        window_ms = min(window_ms, MAX_WINDOW_MS)
        start_ms = end_ms - window_ms
        await self._load(latest, start_ms)
        count = max(1, -(-window_ms // bucket_ms))
        first = end_ms - count * bucket_ms
        totals = [0] * count
        commits = [0] * count
        for record in self._records.values():
            if not first <= record.timestamp_ms < end_ms or record.index > latest:
                continue
            slot = (record.timestamp_ms - first) // bucket_ms
            totals[slot] += record.user_transactions
            commits[slot] += 1
        buckets = [Bucket(first + i * bucket_ms, totals[i], commits[i]) for i in range(count)]
        return ThroughputSeries(end_ms, bucket_ms, buckets)

    async def _load(self, latest: int, start_ms: int) -> None:
        """Read, newest first, the records from `latest` down to the first older than
        `start_ms` (or commit 1), skipping those already held."""
        top = latest
        while top >= 1:
            if top in self._records:
                if self._records[top].timestamp_ms < start_ms:
                    break
                top -= 1
                continue
            first = max(1, top - wire.MAX_COMMITS + 1)
            while first in self._records and first < top:
                first += 1
            records = await self._reader.commits(first, top - first + 1, False)
            if not records:
                break
            for record in records:
                self._records[record.index] = record
            if records[0].timestamp_ms < start_ms:
                break
            top = first - 1
        self._forget()

    def _forget(self) -> None:
        if len(self._records) <= MAX_KEPT:
            return
        for index in sorted(self._records)[: len(self._records) - MAX_KEPT]:
            del self._records[index]
