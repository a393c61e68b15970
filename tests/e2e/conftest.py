"""Fixtures for the multi-process tests: a consensus cluster in a temporary directory,
stopped (no process left behind) whatever the test did."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from soma.bench.cluster import ConsensusCluster

MakeCluster = Callable[..., Awaitable[ConsensusCluster]]


@pytest.fixture
async def make_cluster(tmp_path: Path) -> AsyncIterator[MakeCluster]:
    clusters: list[ConsensusCluster] = []

    async def make(
        size: int = 4,
        only: list[int] | None = None,
        parameters: dict[str, object] | None = None,
        links: bool = False,
    ) -> ConsensusCluster:
        root = tmp_path / f"cluster-{len(clusters)}"
        cluster = ConsensusCluster(size, root, parameters or {}, links=links)
        cluster.root.mkdir()
        clusters.append(cluster)
        await cluster.start(only=only)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            await cluster.stop()
