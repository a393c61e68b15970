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
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from soma.bench.consensus_node import NodeConfig
from soma.bench.load_service import (
    STATS,
    SUBMIT,
    StatsRequest,
    StatsResponse,
    SubmitOutcome,
    SubmitRequest,
    SubmitResponse,
)
from soma.bench.raft_node import RaftNodeConfig
from soma.bench.stats import LatencyRecorder
from soma.consensus.local_committee import free_ports, generate_committee
from soma.consensus.network.server import channel_options

CRASH_AFTER_S = 5.0
READY_TIMEOUT_S = 60.0
#: Closed-loop load: batches in flight per validator, and transactions per batch.
IN_FLIGHT_PER_VALIDATOR = 16
BATCH_TRANSACTIONS = 250
TICK_S = 0.01
BASELINES = ("raft", "raft-batched")


@dataclasses.dataclass(frozen=True)
class ConsensusBenchConfig:
    validators: int = 4
    duration_s: float = 30.0
    tx_size: int = 512
    rate: int | None = None
    crash: int = 0
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)


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
class ValidatorProcess:
    index: int
    process: subprocess.Popen[bytes]
    load_address: str
    channel: grpc.aio.Channel | None = None
    crashed: bool = False


class ProcessCluster:
    """Node processes on loopback, each printing READY when it serves its load port."""

    module = ""

    def __init__(self, size: int, root: Path, parameters: dict[str, Any]) -> None:
        self.size = size
        self.root = root
        self.parameters = parameters
        self.validators: list[ValidatorProcess] = []

    def write_configs(self) -> list[tuple[Path, str]]:
        """One (config file, load address) per node."""
        raise NotImplementedError

    async def start(self) -> None:
        for i, (path, load_address) in enumerate(self.write_configs()):
            log = (self.root / f"node-{i}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", self.module, str(path)],
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
            self.validators.append(ValidatorProcess(i, process, load_address))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for v in self.validators:
            await self._wait_ready(v, deadline)
            v.channel = grpc.aio.insecure_channel(v.load_address, options=channel_options())

    async def _wait_ready(self, v: ValidatorProcess, deadline: float) -> None:
        assert v.process.stdout is not None
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(
            loop.run_in_executor(None, v.process.stdout.readline),
            max(0.1, deadline - time.monotonic()),
        )
        if not line.startswith(b"READY"):
            log = (self.root / f"node-{v.index}.log").read_text(errors="replace")
            raise RuntimeError(f"node {v.index} failed to start:\n{log[-2000:]}")

    def crash(self, index: int) -> None:
        v = self.validators[index]
        v.crashed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(v.process.pid, signal.SIGKILL)
        v.process.wait()

    def live(self) -> list[ValidatorProcess]:
        return [v for v in self.validators if not v.crashed]

    async def stats(self) -> list[StatsResponse]:
        out = []
        for v in self.live():
            assert v.channel is not None
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = v.channel.unary_unary(STATS)
            with contextlib.suppress(grpc.aio.AioRpcError):
                data = await call(StatsRequest().to_bytes(), timeout=5)
                out.append(StatsResponse.from_bytes(data))
        return out

    async def stop(self) -> None:
        for v in self.validators:
            if v.channel is not None:
                await v.channel.close()
        for v in self.validators:
            if v.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(v.process.pid, signal.SIGTERM)
        for v in self.validators:
            try:
                v.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(v.process.pid, signal.SIGKILL)
                v.process.wait()


class ConsensusCluster(ProcessCluster):
    module = "soma.bench.consensus_node"

    def write_configs(self) -> list[tuple[Path, str]]:
        ports = free_ports(2 * self.size)
        addresses = [f"127.0.0.1:{p}" for p in ports[: self.size]]
        committee, keys = generate_committee(self.size, consensus_addresses=addresses)
        out = []
        for i in range(self.size):
            config = NodeConfig(
                committee_hex=committee.to_bytes().hex(),
                index=i,
                protocol_key=keys[i].protocol.to_base64(),
                network_key=keys[i].network.to_base64(),
                store_path=str(self.root / f"validator-{i}" / "consensus"),
                load_address=f"127.0.0.1:{ports[self.size + i]}",
                parameters=self.parameters,
            )
            path = self.root / f"validator-{i}.json"
            config.save(path)
            out.append((path, config.load_address))
        return out


class RaftCluster(ProcessCluster):
    module = "soma.bench.raft_node"

    def write_configs(self) -> list[tuple[Path, str]]:
        ports = free_ports(2 * self.size)
        addresses = [f"127.0.0.1:{p}" for p in ports[: self.size]]
        out = []
        for i in range(self.size):
            config = RaftNodeConfig(
                address=addresses[i],
                partners=[a for j, a in enumerate(addresses) if j != i],
                load_address=f"127.0.0.1:{ports[self.size + i]}",
                journal=str(self.root / f"raft-{i}.journal"),
                batched=bool(self.parameters.get("batched", False)),
            )
            path = self.root / f"raft-{i}.json"
            config.save(path)
            out.append((path, config.load_address))
        return out


@dataclasses.dataclass
class LoadState:
    recorder: LatencyRecorder
    started: float = 0.0
    end: float = 0.0
    committed: int = 0
    refused: int = 0
    failed_batches: int = 0
    last_error: str | None = None


async def _send(v: ValidatorProcess, batch: list[bytes], state: LoadState) -> None:
    assert v.channel is not None
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = v.channel.unary_unary(SUBMIT)
    sent = time.perf_counter()
    try:
        data = await call(SubmitRequest(tuple(batch)).to_bytes(), timeout=60)
    except grpc.aio.AioRpcError as e:
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


async def _closed_loop(v: ValidatorProcess, factory: TransactionFactory, state: LoadState) -> None:
    while time.perf_counter() < state.end and not v.crashed:
        await _send(v, factory.batch(BATCH_TRANSACTIONS), state)


async def _open_loop(
    cluster: ProcessCluster, factory: TransactionFactory, rate: int, state: LoadState
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
                task = asyncio.get_running_loop().create_task(
                    _send(v, factory.batch(per_validator), state)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            owed -= per_validator * len(live)
            turn += 1
        next_tick += TICK_S
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    for task in list(tasks):
        task.cancel()


async def run_consensus_bench(
    config: ConsensusBenchConfig,
    progress: Callable[[str, float, LoadState], None] | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    result = await _run_cluster(ConsensusCluster, "soma", config, progress)
    if baseline in BASELINES:
        batched = baseline == "raft-batched"
        raft_config = dataclasses.replace(config, parameters={"batched": batched})
        raft = await _run_cluster(RaftCluster, baseline, raft_config, progress)
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
    progress: Callable[[str, float, LoadState], None] | None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="soma-bench-") as tmp:
        cluster = kind(config.validators, Path(tmp), config.parameters)
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
    if config.rate is None:
        workers = [
            asyncio.get_running_loop().create_task(_closed_loop(v, factory, state))
            for v in cluster.validators
            for _ in range(IN_FLIGHT_PER_VALIDATOR)
        ]
    else:
        workers = [
            asyncio.get_running_loop().create_task(_open_loop(cluster, factory, config.rate, state))
        ]
    crashed: list[int] = []
    while (now := time.perf_counter()) < state.end:
        if config.crash and not crashed and now - state.started >= CRASH_AFTER_S:
            crashed = list(range(cluster.size - config.crash, cluster.size))
            for index in crashed:
                cluster.crash(index)
        if progress is not None:
            progress(label, now - state.started, state)
        await asyncio.sleep(0.25)
    elapsed = time.perf_counter() - state.started
    after = await cluster.stats()
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    rounds = max((s.last_proposed_round for s in after), default=0) - max(
        (s.last_proposed_round for s in before), default=0
    )
    commits = max((s.last_commit_index for s in after), default=0)
    return {
        "tps": round(state.committed / elapsed, 1),
        "latency_ms": state.recorder.percentiles(),
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
        "last_error": state.last_error,
    }
