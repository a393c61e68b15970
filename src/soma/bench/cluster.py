"""Clusters of node processes on loopback, for `soma bench consensus` and the
multi-process tests.

Each node is an OS process in its own session (so a SIGKILL takes its threads and
children with it) that prints `READY` once it serves its load port (`load_service`). The
cluster can kill a node with SIGKILL, start it again on the same store, cut it off from
the others through link proxies (`ConsensusCluster(links=True)`), and read every live
node's statistics and commit digests. `stop` always leaves no process behind.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from soma.bench.consensus_node import NodeConfig
from soma.bench.link_proxy import LinkProxy
from soma.bench.load_service import (
    COMMITS,
    STATS,
    CommitsRequest,
    CommitsResponse,
    StatsRequest,
    StatsResponse,
)
from soma.bench.raft_node import RaftNodeConfig
from soma.consensus.local_committee import ValidatorKeys, free_ports, generate_committee
from soma.consensus.network.server import channel_options
from soma.types.committee import Committee

READY_TIMEOUT_S = 60.0


@dataclasses.dataclass
class NodeProcess:
    index: int
    config_path: Path
    load_address: str
    process: subprocess.Popen[bytes] | None = None
    channel: grpc.aio.Channel | None = None
    crashed: bool = False


class ProcessCluster(abc.ABC):
    """Node processes of one kind (`module` is run as `python -m module CONFIG`)."""

    module = ""

    def __init__(self, size: int, root: Path, parameters: dict[str, Any]) -> None:
        self.size = size
        self.root = root
        self.parameters = parameters
        self.nodes: list[NodeProcess] = []

    @abc.abstractmethod
    def write_configs(self) -> list[tuple[Path, str]]:
        """One (config file, load address) per node."""

    async def start(self, only: Sequence[int] | None = None) -> None:
        """Write the configs and start every node (or those in `only`)."""
        self.nodes = [
            NodeProcess(i, path, load) for i, (path, load) in enumerate(self.write_configs())
        ]
        chosen = range(self.size) if only is None else only
        for i in chosen:
            self._spawn(self.nodes[i])
        deadline = time.monotonic() + READY_TIMEOUT_S
        for i in chosen:
            await self._wait_ready(self.nodes[i], deadline)

    def _spawn(self, node: NodeProcess) -> None:
        log = (self.root / f"node-{node.index}.log").open("ab")
        node.process = subprocess.Popen(
            [sys.executable, "-m", self.module, str(node.config_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        node.crashed = False

    async def _wait_ready(self, node: NodeProcess, deadline: float) -> None:
        process = node.process
        assert process is not None and process.stdout is not None
        loop = asyncio.get_running_loop()
        try:
            line = await asyncio.wait_for(
                loop.run_in_executor(None, process.stdout.readline),
                max(0.1, deadline - time.monotonic()),
            )
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY"):
            raise RuntimeError(f"node {node.index} failed to start:\n{self.log_tail(node.index)}")
        if node.channel is None:
            node.channel = grpc.aio.insecure_channel(node.load_address, options=channel_options())

    def log_tail(self, index: int, chars: int = 3000) -> str:
        path = self.root / f"node-{index}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # --- faults ------------------------------------------------------------------------

    def crash(self, index: int) -> None:
        """SIGKILL the node: no shutdown code runs."""
        node = self.nodes[index]
        node.crashed = True
        if node.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()
            _close_pipe(node)

    async def restart(self, index: int) -> None:
        """Start a crashed (or never started) node again, on the same store."""
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            raise RuntimeError(f"node {index} is still running")
        if node.channel is not None:
            # A channel that saw the node die is backing off its reconnection: start anew.
            await node.channel.close()
            node.channel = None
        self._spawn(node)
        await self._wait_ready(node, time.monotonic() + READY_TIMEOUT_S)

    def live(self) -> list[NodeProcess]:
        """Nodes running."""
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    # --- views -------------------------------------------------------------------------

    async def node_stats(self, index: int, timeout_s: float = 5.0) -> StatsResponse:
        node = self.nodes[index]
        assert node.channel is not None
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = node.channel.unary_unary(STATS)
        data = await call(StatsRequest().to_bytes(), timeout=timeout_s)
        return StatsResponse.from_bytes(data)

    async def stats(self) -> list[StatsResponse]:
        """Statistics of every live node that answers."""
        out = []
        for node in self.live():
            with contextlib.suppress(grpc.aio.AioRpcError):
                out.append(await self.node_stats(node.index))
        return out

    async def commit_digests(self, index: int, start: int, end: int) -> list[bytes]:
        """Digests of node `index`'s commits with index in [start, end]."""
        node = self.nodes[index]
        assert node.channel is not None
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = node.channel.unary_unary(COMMITS)
        digests: list[bytes] = []
        while start <= end:
            data = await call(CommitsRequest(start, end).to_bytes(), timeout=10)
            batch = CommitsResponse.from_bytes(data).digests
            if not batch:
                break
            digests += batch
            start += len(batch)
        return digests

    async def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 10 s). The signals go out before
        anything is awaited, so even a stop interrupted by a second Ctrl-C leaves no node
        running for long."""
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for node in running:
            assert node.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
        for node in self.nodes:
            if node.channel is not None:
                channel, node.channel = node.channel, None
                await channel.close()
        for node in running:
            assert node.process is not None
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait()
        for node in self.nodes:
            _close_pipe(node)


def _close_pipe(node: NodeProcess) -> None:
    if node.process is not None and node.process.stdout is not None:
        node.process.stdout.close()


class ConsensusCluster(ProcessCluster):
    """Validators running `soma.bench.consensus_node` (a ConsensusAuthority each).

    With `links`, every validator reaches every other through a `LinkProxy` of its own
    (one per directed pair), so tests can cut validators off and heal them; with
    `link_delay_ms`, every link adds that one-way latency."""

    module = "soma.bench.consensus_node"

    def __init__(
        self,
        size: int,
        root: Path,
        parameters: dict[str, Any],
        links: bool = False,
        link_delay_ms: float = 0.0,
    ) -> None:
        super().__init__(size, root, parameters)
        self.committee: Committee | None = None
        self.keys: list[ValidatorKeys] = []
        self._use_links = links or link_delay_ms > 0
        self._link_delay_s = link_delay_ms / 1000
        self.links: dict[tuple[int, int], LinkProxy] = {}

    async def start(self, only: Sequence[int] | None = None) -> None:
        if self._use_links and not self.links:
            for i in range(self.size):
                for j in range(self.size):
                    if i != j:
                        proxy = LinkProxy(delay_s=self._link_delay_s)
                        await proxy.start()
                        self.links[(i, j)] = proxy
        await super().start(only)

    async def cut_off(self, index: int, cut: bool = True) -> None:
        """Cut every link to and from validator `index` (or heal them)."""
        if not self.links:
            raise RuntimeError("the cluster was built without links")
        for (i, j), proxy in self.links.items():
            if index in (i, j):
                await proxy.set_cut(cut)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            for proxy in self.links.values():
                await proxy.stop()

    def write_configs(self) -> list[tuple[Path, str]]:
        # The link proxies already hold their ports, so none of these can collide with them.
        ports = free_ports(2 * self.size)
        load_ports = ports[self.size :]
        addresses = [f"127.0.0.1:{p}" for p in ports[: self.size]]
        committee, keys = generate_committee(self.size, consensus_addresses=addresses)
        self.committee, self.keys = committee, keys
        for (_, j), proxy in self.links.items():
            # Committee order is by name, not the order the addresses were handed out.
            proxy.target = committee.members[j].consensus_address
        out = []
        for i in range(self.size):
            routes = {
                str(j): f"127.0.0.1:{proxy.port}" for (a, j), proxy in self.links.items() if a == i
            }
            config = NodeConfig(
                committee_hex=committee.to_bytes().hex(),
                index=i,
                protocol_key=keys[i].protocol.to_base64(),
                network_key=keys[i].network.to_base64(),
                store_path=str(self.root / f"validator-{i}" / "consensus"),
                load_address=f"127.0.0.1:{load_ports[i]}",
                parameters=self.parameters,
                peer_addresses=routes,
            )
            path = self.root / f"validator-{i}.json"
            config.save(path)
            out.append((path, config.load_address))
        return out

    def store_path(self, index: int) -> Path:
        return self.root / f"validator-{index}" / "consensus"


class RaftCluster(ProcessCluster):
    """The Raft baseline: `soma.bench.raft_node` processes (pysyncobj)."""

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
