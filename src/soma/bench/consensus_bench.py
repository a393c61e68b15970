"""`soma bench consensus`: N validators as OS processes on loopback, load through their
TransactionClients, figures as one JSON object.

Each validator gets a fresh RocksDB store in a temporary directory and its own load port
(`load_service`). The driver sends batches of `tx_size`-byte transactions, each unique
(a counter in its first 8 bytes), round-robin over the live validators; a batch's answer
comes when the block carrying it is committed, and its transactions count once, with the
time from send to answer as their latency. Without `--rate` the driver keeps a fixed
number of batches in flight per validator (a closed loop: as fast as consensus goes); with
`--rate` it sends on a 10 ms tick. `--crash K` kills K validators with SIGKILL 5 s in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from soma.bench.cluster import ConsensusCluster, NodeProcess, ProcessCluster, RaftCluster
from soma.bench.load_service import SUBMIT, SubmitOutcome, SubmitRequest, SubmitResponse
from soma.bench.stats import LatencyRecorder
from soma.consensus.parameters import ConsensusParameters
from soma.types.error import SomaError

CRASH_AFTER_S = 5.0
#: Closed-loop load: batches in flight per validator, and transactions per batch.
IN_FLIGHT_PER_VALIDATOR = 16
BATCH_TRANSACTIONS = 250
TICK_S = 0.01
BASELINES = ("raft", "raft-batched")


class BenchConfigError(SomaError):
    """Benchmark settings that cannot give a meaningful run."""

    code = "BENCH_CONFIG"


@dataclasses.dataclass(frozen=True)
class ConsensusBenchConfig:
    validators: int = 4
    duration_s: float = 30.0
    tx_size: int = 512
    rate: int | None = None
    crash: int = 0
    #: One-way latency added to every link between validators (soma only), in ms.
    latency_ms: float = 0.0
    #: ConsensusParameters fields for every validator.
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse settings that would start processes only to fail, or to report figures
        that measure nothing (a stalled committee, batches every validator refuses)."""
        if self.validators < 1:
            raise BenchConfigError(f"validators must be at least 1 (got {self.validators})")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise BenchConfigError(f"duration must be positive seconds (got {self.duration_s})")
        if self.tx_size < 8:
            raise BenchConfigError(
                f"tx-size must be at least 8 bytes (got {self.tx_size}): each transaction "
                "starts with an 8-byte counter that keeps it unique"
            )
        try:
            params = ConsensusParameters(**self.parameters)
        except (TypeError, SomaError) as e:
            raise BenchConfigError(f"consensus parameters: {e}") from e
        if self.tx_size > params.max_transaction_bytes:
            raise BenchConfigError(
                f"tx-size {self.tx_size} exceeds the consensus limit of "
                f"{params.max_transaction_bytes} bytes per transaction"
            )
        if self.rate is not None and self.rate <= 0:
            raise BenchConfigError(f"rate must be positive (got {self.rate})")
        if self.crash < 0:
            raise BenchConfigError(f"crash must not be negative (got {self.crash})")
        if not (math.isfinite(self.latency_ms) and 0 <= self.latency_ms <= 10_000):
            raise BenchConfigError(f"latency-ms must be 0 to 10000 (got {self.latency_ms})")
        f = (self.validators - 1) // 3
        if self.crash > f:
            raise BenchConfigError(
                f"crash {self.crash} is more than f = {f} for {self.validators} validators: "
                "a 3f+1 committee stops committing when more than f validators crash"
            )
        if self.crash and self.duration_s <= CRASH_AFTER_S:
            raise BenchConfigError(
                f"crash needs a duration over {CRASH_AFTER_S:g} s: validators are killed "
                f"{CRASH_AFTER_S:g} s into the run"
            )

    def batch_transactions(self) -> int:
        """Transactions per submitted batch: at most `BATCH_TRANSACTIONS`, and few enough
        that a batch fits in one block (it goes into one block whole)."""
        params = ConsensusParameters(**self.parameters)
        return max(
            1,
            min(
                BATCH_TRANSACTIONS,
                params.max_block_transactions,
                params.max_block_bytes // self.tx_size,
            ),
        )


class TransactionFactory:
    """Unique transactions of a fixed size: a counter, then filler."""

    def __init__(self, size: int) -> None:
        self._size = max(size, 8)
        self._filler = os.urandom(self._size - 8)
        self._next = 0

    def batch(self, count: int) -> list[bytes]:
        start = self._next
        self._next += count
        filler = self._filler
        return [i.to_bytes(8, "big") + filler for i in range(start, start + count)]


@dataclasses.dataclass
class LoadState:
    recorder: LatencyRecorder
    started: float = 0.0
    end: float = 0.0
    committed: int = 0
    refused: int = 0
    failed_batches: int = 0
    #: Batches lost with a validator `--crash` killed (in flight to it): expected.
    lost_with_crashed: int = 0
    last_error: str | None = None


async def _send(v: NodeProcess, batch: list[bytes], state: LoadState) -> None:
    if v.channel is None:
        return
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = v.channel.unary_unary(SUBMIT)
    sent = time.perf_counter()
    try:
        data = await call(SubmitRequest(tuple(batch)).to_bytes(), timeout=60)
    except grpc.aio.AioRpcError as e:
        if v.crashed:
            state.lost_with_crashed += 1
            return
        state.failed_batches += 1
        state.last_error = f"{e.code().name}: {e.details()}"
        return
    answered = time.perf_counter()
    response = SubmitResponse.from_bytes(data)
    if response.outcome == SubmitOutcome.COMMITTED:
        if answered <= state.end:
            state.committed += len(batch)
            state.recorder.add((answered - sent) * 1000, len(batch))
    elif response.outcome == SubmitOutcome.QUEUE_FULL:
        state.refused += len(batch)
    else:
        state.failed_batches += 1
        state.last_error = SubmitOutcome(response.outcome).name


async def _closed_loop(
    v: NodeProcess, factory: TransactionFactory, batch: int, state: LoadState
) -> None:
    while time.perf_counter() < state.end and not v.crashed:
        await _send(v, factory.batch(batch), state)


async def _open_loop(
    cluster: ProcessCluster,
    factory: TransactionFactory,
    rate: int,
    max_batch: int,
    state: LoadState,
) -> None:
    tasks: set[asyncio.Task[None]] = set()
    owed = 0.0
    turn = 0
    next_tick = time.perf_counter()
    while time.perf_counter() < state.end:
        owed += rate * TICK_S
        live = cluster.live()
        per_validator = int(owed) // max(1, len(live))
        if per_validator > 0:
            for i in range(len(live)):
                v = live[(turn + i) % len(live)]
                for start in range(0, per_validator, max_batch):
                    count = min(max_batch, per_validator - start)
                    task = asyncio.get_running_loop().create_task(
                        _send(v, factory.batch(count), state)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            owed -= per_validator * len(live)
            turn += 1
        next_tick += TICK_S
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_consensus_bench(
    config: ConsensusBenchConfig,
    progress: Callable[[str, float, LoadState], None] | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    if baseline is not None and baseline not in BASELINES:
        raise BenchConfigError(f"unknown baseline {baseline!r}; one of {', '.join(BASELINES)}")
    result = await _run_cluster(ConsensusCluster, "soma", config, config.parameters, progress)
    if baseline is not None:
        batched = baseline == "raft-batched"
        raft = await _run_cluster(RaftCluster, baseline, config, {"batched": batched}, progress)
        system = "raft (pysyncobj), one log entry per " + ("batch" if batched else "transaction")
        result["baseline"] = {"system": system, **raft}
        result["ratio_vs_baseline"] = (
            round(result["tps"] / raft["tps"], 2) if raft["tps"] > 0 else None
        )
    return result


async def _run_cluster(
    kind: type[ProcessCluster],
    label: str,
    config: ConsensusBenchConfig,
    parameters: dict[str, Any],
    progress: Callable[[str, float, LoadState], None] | None,
) -> dict[str, Any]:
    """Start a cluster of `kind` (nodes configured with `parameters`), drive it, stop it."""
    with tempfile.TemporaryDirectory(prefix="soma-bench-") as tmp:
        cluster: ProcessCluster
        if kind is ConsensusCluster and config.latency_ms > 0:
            cluster = ConsensusCluster(
                config.validators, Path(tmp), parameters, link_delay_ms=config.latency_ms
            )
        else:
            cluster = kind(config.validators, Path(tmp), parameters)
        try:
            await cluster.start()
            return await _drive(cluster, label, config, progress)
        finally:
            await cluster.stop()


async def _drive(
    cluster: ProcessCluster,
    label: str,
    config: ConsensusBenchConfig,
    progress: Callable[[str, float, LoadState], None] | None,
) -> dict[str, Any]:
    factory = TransactionFactory(config.tx_size)
    state = LoadState(LatencyRecorder())
    before = await cluster.stats()
    state.started = time.perf_counter()
    state.end = state.started + config.duration_s
    batch = config.batch_transactions()
    loop = asyncio.get_running_loop()
    if config.rate is None:
        workers = [
            loop.create_task(_closed_loop(v, factory, batch, state))
            for v in cluster.nodes
            for _ in range(IN_FLIGHT_PER_VALIDATOR)
        ]
    else:
        workers = [loop.create_task(_open_loop(cluster, factory, config.rate, batch, state))]
    crashed: list[int] = []
    try:
        while (now := time.perf_counter()) < state.end:
            if config.crash and not crashed and now - state.started >= CRASH_AFTER_S:
                crashed = list(range(cluster.size - config.crash, cluster.size))
                for index in crashed:
                    cluster.crash(index)
            if progress is not None:
                progress(label, now - state.started, state)
            await asyncio.sleep(0.25)
        elapsed = time.perf_counter() - state.started
        if progress is not None:
            progress(label, elapsed, state)
        after = await cluster.stats()
    finally:
        # However the run ends (Ctrl-C included), no load task outlives it.
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    rounds = max((s.last_proposed_round for s in after), default=0) - max(
        (s.last_proposed_round for s in before), default=0
    )
    commits = max((s.last_commit_index for s in after), default=0) - max(
        (s.last_commit_index for s in before), default=0
    )
    latency = state.recorder.percentiles()
    delay = config.latency_ms if isinstance(cluster, ConsensusCluster) else 0.0
    return {
        "tps": round(state.committed / elapsed, 1),
        "latency_ms": latency,
        # Latency in units of the added one-way link latency (Mysticeti commits in about
        # three message delays).
        "link_latency_ms": delay,
        "latency_delta": (
            {k: round(v / delay, 2) for k, v in latency.items() if isinstance(v, (int, float))}
            if delay > 0
            else None
        ),
        "commits": commits,
        "rounds_per_s": round(rounds / elapsed, 2),
        "validators": config.validators,
        "crashed": len(crashed),
        "duration_s": round(elapsed, 2),
        "tx_size": config.tx_size,
        "rate": config.rate,
        "committed_transactions": state.committed,
        "refused_transactions": state.refused,
        "failed_batches": state.failed_batches,
        "batches_lost_with_crashed": state.lost_with_crashed,
        "last_error": state.last_error,
    }
