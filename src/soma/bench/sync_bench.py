"""`soma bench sync`: how fast a fresh fullnode catches up with a network.

A fresh local network (N validator processes in a temporary directory) runs a closed
loop of transfers until T of them are certified; the load stops. Once the validators
have certified every commit of the load, a new fullnode (`soma config fullnode`'s files,
its own process) starts from genesis and follows the chain by state sync; the clock
runs from its start until its `latest_certified_commit` (from its own HTTP API) reaches
the network's latest certified commit, where its state root must equal the network's.

`sync_tps` is transfers synced and executed per second; `network_tps` the rate the
network certified them at under load; `ratio` = sync_tps / network_tps, how many times
faster than the network produced it a node catches up with the chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from soma.bench.transfers_bench import drive_transfers
from soma.node.extra_fullnode import write_extra_fullnode
from soma.node.layout import validator_config_name
from soma.node.local_network import create_local_network, validator_routes
from soma.node.start import QUIET_LOGS, LocalNetworkRunner
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_keystore, load_node_config
from soma.types.error import SomaError
from soma.utils.log_setup import LogSettings

#: The fresh fullnode's name among the bench's processes (and its log's).
SYNCER = "syncing-fullnode"
#: Longest the bench waits for the network to certify its last commits, and for the
#: fresh fullnode to catch up (liveness bounds; the figures are what is measured).
SETTLE_TIMEOUT_S = 120.0
SYNC_TIMEOUT_S = 600.0


class SyncBenchError(SomaError):
    code = "BENCH_INVALID_ARGUMENT"


@dataclasses.dataclass(frozen=True)
class SyncBenchConfig:
    validators: int = 4
    transfers: int = 20_000
    accounts: int = 1_000
    #: How the nodes log (their files in the network's logs/): quiet by default, so
    #: logging does not weigh on what is measured.
    log_settings: LogSettings = QUIET_LOGS

    def __post_init__(self) -> None:
        if not 1 <= self.validators <= 50:
            raise SyncBenchError("--validators must be 1 to 50")
        if not 1 <= self.transfers <= 10_000_000:
            raise SyncBenchError("--transfers must be 1 to 10000000")
        if not 1 <= self.accounts <= 10_000:
            raise SyncBenchError("--accounts must be 1 to 10000")


async def run_sync_bench(
    config: SyncBenchConfig, progress: Callable[[str, dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run the bench; `progress(phase, figures)` is told how it goes, about once a
    second."""

    def tell(phase: str, figures: dict[str, Any]) -> None:
        if progress is not None:
            progress(phase, figures)

    with tempfile.TemporaryDirectory(prefix="soma-bench-sync-") as tmp:
        root = Path(tmp) / "network"
        create_local_network(root, validators=config.validators, accounts=config.accounts)
        keys = load_keystore(root / "keystore.yaml")
        runner = LocalNetworkRunner(root, config.validators, log_settings=config.log_settings)
        try:
            await runner.start_validators()
            configs = [
                load_node_config(root / validator_config_name(i)) for i in range(config.validators)
            ]
            reader = await RemoteReader.connect(*validator_routes(configs))
            try:
                load = await drive_transfers(
                    reader,
                    keys,
                    lambda done: done >= config.transfers,
                    lambda figures: tell("load", figures),
                )
                target = await _settled(reader, tell)
                syncer = write_extra_fullnode(root, Path(tmp) / SYNCER)
                started = time.monotonic()
                await runner.start_node(SYNCER, syncer.config)
                ready_s = time.monotonic() - started
                reached = await _caught_up(syncer.api_url, target, started, tell)
                seconds = time.monotonic() - started
                # Its state root, against the network's at the same commit.
                theirs = await reader.certified_summary(reached["index"])
            finally:
                await reader.close()
        finally:
            await runner.stop()
    if theirs is None or theirs.data.state_root.hex() != reached["state_root"]:
        raise SomaError(
            f"the synced node's state root at commit {reached['index']} is "
            f"{reached['state_root']}, not the network's"
        )
    transactions = int(load["transfers"])
    network_tps = transactions / float(load["duration_s"])
    sync_tps = transactions / seconds
    return {
        "validators": config.validators,
        "transactions": transactions,
        "commits": target["index"],
        "seconds": round(seconds, 2),
        "startup_s": round(ready_s, 2),
        "sync_tps": round(sync_tps, 1),
        "network_tps": round(network_tps, 1),
        "ratio": round(sync_tps / network_tps, 2),
        "state_root": reached["state_root"],
        "load": load,
    }


async def _settled(
    reader: RemoteReader, tell: Callable[[str, dict[str, Any]], None]
) -> dict[str, Any]:
    """Wait until the validators have certified every commit the load made; the
    network's latest certified commit then, with its state root."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    executed = (await reader.status()).latest_commit
    while True:
        status = await reader.status()
        if status.latest_certified_commit >= executed:
            summary = await reader.certified_summary(status.latest_certified_commit)
            if summary is not None:
                return {
                    "index": summary.data.index,
                    "state_root": summary.data.state_root.hex(),
                }
        if time.monotonic() > deadline:
            raise SomaError(f"the network did not certify commit {executed} in time")
        tell("settle", {"certified": status.latest_certified_commit, "target": executed})
        await asyncio.sleep(0.2)


async def _caught_up(
    api_url: str,
    target: dict[str, Any],
    started: float,
    tell: Callable[[str, dict[str, Any]], None],
) -> dict[str, Any]:
    """Poll the syncing node's /status until it has verified the target commit."""
    last_told = 0.0
    async with httpx.AsyncClient(base_url=api_url, timeout=10.0) as client:
        while True:
            now = time.monotonic()
            if now - started > SYNC_TIMEOUT_S:
                raise SomaError(f"the fresh fullnode did not catch up in {SYNC_TIMEOUT_S} s")
            try:
                status = (await client.get("/status")).json()
            except (httpx.HTTPError, ValueError):
                await asyncio.sleep(0.05)
                continue
            if status["latest_certified_commit"] >= target["index"]:
                # Verified: its own summary of that commit is the certified one.
                return {
                    "index": status["latest_certified_commit"],
                    "state_root": status["state_root"],
                }
            if now - last_told >= 1.0:
                last_told = now
                tell(
                    "sync",
                    {
                        "elapsed_s": round(now - started, 1),
                        "synced": status["latest_certified_commit"],
                        "target": target["index"],
                    },
                )
            await asyncio.sleep(0.05)
