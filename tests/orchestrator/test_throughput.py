"""Throughput over the last minutes, from commit records: user transactions summed per
bucket by consensus timestamp, read newest first in pages only as far back as the
window reaches, and cached so a refresh reads only the commits executed since."""

from __future__ import annotations

from typing import cast

from soma.authority import service_wire as wire
from soma.orchestrator.chain_reader import ChainReader
from soma.orchestrator.throughput import Throughput

#: Ten commits a second, commit i at i * 100 ms, with i % 5 user transactions.
STEP_MS = 100


def _record(index: int) -> wire.CommitRecord:
    return wire.CommitRecord(index, 0, index * STEP_MS, index % 5 + 1, index % 5, (), None)


class Commits:
    def __init__(self, latest: int) -> None:
        self.latest = latest
        self.asked: list[tuple[int, int]] = []

    async def commits(self, start: int, count: int, detail: bool) -> list[wire.CommitRecord]:
        assert not detail and 1 <= count <= wire.MAX_COMMITS
        self.asked.append((start, count))
        return [_record(i) for i in range(start, min(start + count, self.latest + 1))]


def _expected(first_ms: int, end_ms: int) -> int:
    return sum(i % 5 for i in range(1, 100_000) if first_ms <= i * STEP_MS < end_ms)


async def test_buckets_hold_the_window_and_a_refresh_reads_only_new_commits() -> None:
    chain = Commits(latest=5_000)  # 500 s of commits
    throughput = Throughput(cast(ChainReader, chain))
    end_ms = 5_000 * STEP_MS + 1
    series = await throughput.series(chain.latest, end_ms, 300_000, 10_000)
    assert len(series.buckets) == 30 and series.bucket_ms == 10_000
    assert series.buckets[0].start_ms == end_ms - 300_000
    assert series.transactions == _expected(end_ms - 300_000, end_ms)
    assert all(b.commits == 100 for b in series.buckets)
    # Read newest first, a page at a time, and no further back than the window.
    assert chain.asked[0] == (5_000 - wire.MAX_COMMITS + 1, wire.MAX_COMMITS)
    assert min(start for start, _ in chain.asked) >= 5_000 - 3_000 - wire.MAX_COMMITS
    chain.asked.clear()
    chain.latest = 5_020
    end_ms = 5_020 * STEP_MS + 1
    again = await throughput.series(chain.latest, end_ms, 300_000, 10_000)
    assert chain.asked == [(5_001, 20)]
    assert again.transactions == _expected(end_ms - 300_000, end_ms)


async def test_an_idle_or_new_chain_gives_empty_buckets() -> None:
    chain = Commits(latest=0)
    series = await Throughput(cast(ChainReader, chain)).series(0, 1_000_000, 60_000, 5_000)
    assert len(series.buckets) == 12 and series.transactions == 0
    assert chain.asked == []
