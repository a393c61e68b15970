"""`soma bench chaos`: validators SIGKILLed over and over under a stream of transfers.

A fresh local network runs as validator processes on loopback. Accounts send transfers
in a closed loop through the quorum driver; each transfer is one signed transaction,
submitted again (the same bytes) after any error until it is certified, so a transfer
either succeeds or its certificate says why it failed. Every `kill_every_s` one validator
picked at random is SIGKILLed and restarted on its store (one down at a time: the
committee tolerates f = 1 of 4). At the end the load stops and the run checks what an
operator would:

* `lost`: certified transactions that some validator does not hold with its effects;
* `failed`: transfers that did not succeed (a failure status, or no certificate before
  the end);
* `state_roots_agree`: every validator reports the same state root;
* `equivocations`: blocks of one author and round with two digests, in any store;
* `supply_conserved`: coins and stake plus the fees of the current epoch (earlier
  epochs' were paid to the validators) equal genesis's supply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soma.authority.store import AuthorityStore
from soma.authority.supply import genesis_supply, live_supply, unpaid_fees
from soma.bench.stats import LatencyRecorder
from soma.consensus.store import ConsensusStore
from soma.node.layout import GENESIS_FILE, validator_config_name
from soma.node.local_network import (
    create_local_network,
    read_genesis,
    validator_client,
    validator_routes,
)
from soma.node.start import QUIET_LOGS, LocalNetworkRunner
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import NodeConfig, load_keystore, load_node_config
from soma.types.crypto import AccountKeyPair
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemState
from soma.types.transaction import (
    SignedTransaction,
    TransactionData,
    TransferCoin,
)
from soma.utils.log_setup import LogSettings


class ChaosBenchError(SomaError):
    code = "BENCH_INVALID_ARGUMENT"


#: After the load stops: how long in-flight transfers and the validators' agreement are
#: waited for.
SETTLE_S = 120.0
#: Lookups of certified transactions in flight at once, at the end.
LOOKUPS_IN_FLIGHT = 64
#: A killed validator stays down this long before its restart.
DOWN_S = 0.5


@dataclasses.dataclass(frozen=True)
class ChaosBenchConfig:
    validators: int = 4
    duration_s: float = 300.0
    kill_every_s: float = 1.0
    accounts: int = 40
    seed: int = 1
    #: How the nodes log (their files in the network's logs/): quiet by default, so
    #: logging does not weigh on what is measured.
    log_settings: LogSettings = QUIET_LOGS

    def __post_init__(self) -> None:
        if not 4 <= self.validators <= 50:
            raise ChaosBenchError("--validators must be 4 to 50 (one is always down)")
        if not 0 < self.duration_s <= 24 * 3600:
            raise ChaosBenchError("--duration must be above 0 and at most a day")
        if not 0.1 <= self.kill_every_s <= 3600:
            raise ChaosBenchError("--kill-every must be 0.1 to 3600 s")
        if not 1 <= self.accounts <= 10_000:
            raise ChaosBenchError("--accounts must be 1 to 10000")


@dataclasses.dataclass
class _Load:
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    certified: list[TransactionDigest] = dataclasses.field(default_factory=list)
    latency: LatencyRecorder = dataclasses.field(default_factory=LatencyRecorder)


async def run_chaos_bench(
    config: ChaosBenchConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="soma-chaos-") as tmp:
        root = Path(tmp)
        create_local_network(root, validators=config.validators, accounts=config.accounts)
        keys = load_keystore(root / "keystore.yaml")
        runner = LocalNetworkRunner(root, config.validators, log_settings=config.log_settings)
        configs = [
            load_node_config(root / validator_config_name(i)) for i in range(config.validators)
        ]
        try:
            await runner.start_validators()
            reader = await RemoteReader.connect(*validator_routes(configs))
            try:
                result = await _run(config, runner, reader, keys, configs, progress)
            finally:
                await reader.close()
        finally:
            await runner.stop()
        result["equivocations"] = _equivocations(root, config.validators)
        result["supply_conserved"] = _supply_conserved(root, config.validators)
        return result


async def _run(
    config: ChaosBenchConfig,
    runner: LocalNetworkRunner,
    reader: RemoteReader,
    keys: list[AccountKeyPair],
    configs: list[NodeConfig],
    progress: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    load = _Load()
    stop = asyncio.Event()
    kills = 0
    start = time.monotonic()
    senders = [
        asyncio.ensure_future(_sender(reader, keys, i, stop, load)) for i in range(len(keys))
    ]
    rng = random.Random(config.seed)
    try:
        while time.monotonic() - start < config.duration_s:
            await asyncio.sleep(config.kill_every_s)
            name = f"validator-{rng.randrange(config.validators)}"
            proc = runner.processes[name]
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills += 1
            await asyncio.sleep(DOWN_S)
            await runner.restart(name)
            if progress is not None:
                progress(
                    {
                        "elapsed_s": round(time.monotonic() - start, 1),
                        "kills": kills,
                        "succeeded": load.succeeded,
                        "failed": load.failed,
                    }
                )
        elapsed = time.monotonic() - start
        stop.set()
        _, pending = await asyncio.wait(senders, timeout=SETTLE_S)
        unfinished = len(pending)
    finally:
        stop.set()
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
    roots_agree = await _roots_agree(configs)
    lost = await _lost(configs, load.certified)
    return {
        "validators": config.validators,
        "duration_s": round(elapsed, 1),
        "kills": kills,
        "transfers": load.succeeded,
        "tps": round(load.succeeded / elapsed, 1),
        "latency_ms": load.latency.percentiles(),
        "resubmissions": load.retries,
        "failed": load.failed + unfinished,
        "lost": lost,
        "state_roots_agree": roots_agree,
    }


async def _sender(
    reader: RemoteReader, keys: list[AccountKeyPair], i: int, stop: asyncio.Event, load: _Load
) -> None:
    """One account's closed loop: each transfer is submitted until it is certified."""
    key = keys[i]
    sender = key.public_key.to_address()
    to = keys[(i + 1) % len(keys)].public_key.to_address()
    coin = (await reader.owned_objects(sender, None, 1)).items[0]
    fee = reader.transaction_fee
    while not stop.is_set():
        data = TransactionData(TransferCoin(coin, 1, to), sender, coin, 10 * fee, None)
        tx = SignedTransaction.sign(data, key)
        sent = time.monotonic()
        while True:
            try:
                certificate = await reader.driver.execute(tx, timeout_s=30)
                break
            except SomaError:
                # A validator down, a quorum not yet reachable: the same transaction
                # again (the committee executes it at most once).
                load.retries += 1
                await asyncio.sleep(0.2)
        load.certified.append(tx.digest())
        if certificate.data.status.is_success():
            load.succeeded += 1
            load.latency.add((time.monotonic() - sent) * 1000)
        else:
            load.failed += 1
        gas = certificate.data.gas_object()
        if gas is None:
            return
        coin = gas


async def _roots_agree(configs: list[NodeConfig]) -> bool:
    clients = [validator_client(c) for c in configs]
    try:
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            try:
                roots = {(await c.get_status()).state_root for c in clients}
            except SomaError:
                roots = set()
            if len(roots) == 1:
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        for client in clients:
            await client.close()


async def _lost(configs: list[NodeConfig], certified: list[TransactionDigest]) -> int:
    """Certified transactions that some validator does not hold with their effects."""
    clients = [validator_client(c) for c in configs]
    limit = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

    async def held_everywhere(digest: TransactionDigest) -> bool:
        async with limit:
            answers = await asyncio.gather(*(c.get_transaction(digest) for c in clients))
        return all(a.transaction is not None and a.effects is not None for a in answers)

    try:
        held = await asyncio.gather(*(held_everywhere(d) for d in certified))
    finally:
        for client in clients:
            await client.close()
    return held.count(False)


def _equivocations(root: Path, validators: int) -> int:
    """(author, round) slots with two different blocks across every validator's store."""
    seen: dict[tuple[int, int], set[bytes]] = {}
    for i in range(validators):
        db = Path(load_node_config(root / validator_config_name(i)).db_path)
        for path in sorted(db.glob("consensus-*")):
            store = ConsensusStore.open_rocksdb(path)
            try:
                for block in store.scan_blocks_from(1):
                    ref = block.reference()
                    seen.setdefault((ref.author, ref.round), set()).add(bytes(ref.digest))
            finally:
                store.close()
    return sum(1 for digests in seen.values() if len(digests) > 1)


def _supply_conserved(root: Path, validators: int) -> bool:
    """Every validator's live coins and stake, plus the fees its current epoch charged
    (earlier epochs' were paid out by their epoch change), equal genesis's supply."""
    supply = genesis_supply(read_genesis(root / GENESIS_FILE))
    for i in range(validators):
        db = Path(load_node_config(root / validator_config_name(i)).db_path)
        store = AuthorityStore.open_rocksdb(db / "authority")
        try:
            live = [store.get_live_object(ref.object_id) for ref in store.live_refs()]
            objects = [obj for obj in live if obj is not None]
            system = next(obj for obj in objects if obj.id == SYSTEM_STATE_OBJECT_ID)
            epoch = SystemState.from_object(system).epoch
            held = live_supply(objects, unpaid_fees(store.effects.values(), epoch))
        finally:
            store.close()
        if held.total != supply:
            return False
    return True
