"""`soma bench transfers`: coin transfers through a real local network.

A fresh network (`soma genesis` in a temporary directory) runs as N `soma node`
processes on loopback. Every account sends transfers in a closed loop through the
validators' submit path (the QuorumDriver: each transfer submitted to one validator,
calls batched per validator, the effects of every validator streamed back until an
effects certificate forms). Latency is submit to certificate, at the sender.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soma.bench.stats import LatencyRecorder
from soma.node.layout import validator_config_name
from soma.node.local_network import create_local_network, validator_routes
from soma.node.start import QUIET_LOGS, LocalNetworkRunner
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_keystore, load_node_config
from soma.types.crypto import AccountKeyPair
from soma.types.error import SomaError
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin
from soma.utils.log_setup import LogSettings


class TransfersBenchError(SomaError):
    code = "BENCH_INVALID_ARGUMENT"


@dataclasses.dataclass(frozen=True)
class TransfersBenchConfig:
    validators: int = 4
    duration_s: float = 30.0
    #: Senders in the closed loop: enough in flight to keep the validators busy
    #: (latency is about accounts / throughput once they are).
    accounts: int = 1_000
    #: How the nodes log (their files in the network's logs/): quiet by default, so
    #: logging does not weigh on what is measured.
    log_settings: LogSettings = QUIET_LOGS

    def __post_init__(self) -> None:
        if not 1 <= self.validators <= 50:
            raise TransfersBenchError("--validators must be 1 to 50")
        if not 0 < self.duration_s <= 3600:
            raise TransfersBenchError("--duration must be above 0 and at most 3600 s")
        if not 1 <= self.accounts <= 10_000:
            raise TransfersBenchError("--accounts must be 1 to 10000")


async def run_transfers_bench(
    config: TransfersBenchConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="soma-bench-") as tmp:
        root = Path(tmp)
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
                deadline = time.monotonic() + config.duration_s
                load = await drive_transfers(
                    reader, keys, lambda n: time.monotonic() >= deadline, progress
                )
                return {"validators": config.validators, "accounts": config.accounts, **load}
            finally:
                await reader.close()
        finally:
            await runner.stop_validators()


async def drive_transfers(
    reader: RemoteReader,
    keys: list[AccountKeyPair],
    done: Callable[[int], bool],
    progress: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """Every account sends transfers in a closed loop until `done(transfers certified
    so far)`; returns the figures of the run."""
    rng = random.Random(7)
    fee = reader.transaction_fee
    recipients = [k.public_key.to_address() for k in keys]
    gas: dict[int, ObjectRef] = {}
    for i, key in enumerate(keys):
        address = key.public_key.to_address()
        gas[i] = (await reader.owned_objects(address, None, 1)).items[0]
    latency = LatencyRecorder()
    counts = {"done": 0, "failed": 0}
    errors: dict[str, int] = {}
    first_commit = (await reader.status()).latest_commit
    start = time.monotonic()

    async def account(i: int) -> None:
        key = keys[i]
        sender = key.public_key.to_address()
        while not done(counts["done"]):
            coin = gas[i]
            to = recipients[rng.randrange(len(recipients))]
            data = TransactionData(TransferCoin(coin, 1, to), sender, coin, 10 * fee, None)
            tx = SignedTransaction.sign(data, key)
            sent = time.monotonic()
            try:
                certificate = await reader.driver.execute(tx, timeout_s=60)
            except SomaError as e:
                counts["failed"] += 1
                errors[e.code] = errors.get(e.code, 0) + 1
                found = await reader.get_object(coin.object_id)
                if found is not None and found.owner_address() == sender:
                    gas[i] = found.reference()
                continue
            if not certificate.data.status.is_success():
                counts["failed"] += 1
            else:
                counts["done"] += 1
                latency.add((time.monotonic() - sent) * 1000)
            new_gas = certificate.data.gas_object()
            if new_gas is not None:
                gas[i] = new_gas

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            if progress is not None:
                elapsed = time.monotonic() - start
                progress(
                    {
                        "elapsed_s": round(elapsed, 1),
                        "done": counts["done"],
                        "failed": counts["failed"],
                    }
                )

    reporter = asyncio.ensure_future(report())
    try:
        await asyncio.gather(*(account(i) for i in range(len(keys))))
    finally:
        reporter.cancel()
    elapsed = time.monotonic() - start
    commits = (await reader.status()).latest_commit - first_commit
    return {
        "duration_s": round(elapsed, 2),
        "transfers": counts["done"],
        "tps": round(counts["done"] / elapsed, 1),
        "latency_ms": latency.percentiles(),
        "failed": counts["failed"],
        "errors": errors,
        "commits": commits,
        "transfers_per_commit": round(counts["done"] / commits, 1) if commits else None,
    }
