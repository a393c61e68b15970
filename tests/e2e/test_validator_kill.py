"""One of four validator processes SIGKILLed during a stream of transfers: transfers keep
being certified by the other three; restarted on its store, it catches up to the same
state root."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from soma.authority.service_client import ValidatorCallError, ValidatorClient
from soma.node.local_network import create_local_network
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_client_config, load_keystore, load_node_config
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin
from tests.e2e.test_validator_nodes import start_nodes, stop_nodes

KILLED = 3
TIMEOUT_S = 90.0


async def test_sigkill_one_validator_under_transfers_and_restart(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", validators=4, accounts=4, balance=10**9)
    configs = [load_node_config(p) for p in net.validator_configs]
    keys = load_keystore(load_client_config(net.client_config).keystore_path)
    procs = start_nodes(net.validator_configs, tmp_path)
    gateway = await RemoteReader.connect([c.network_address for c in configs])
    fee = gateway.transaction_fee
    certified = 0
    stop_sending = asyncio.Event()

    async def sender(i: int) -> None:
        nonlocal certified
        key = keys[i]
        address = key.public_key.to_address()
        owned = await gateway.read(lambda c: c.get_owned_objects(address))
        coin = owned.objects[0]
        to = keys[(i + 1) % len(keys)].public_key.to_address()
        while not stop_sending.is_set():
            data = TransactionData(TransferCoin(coin, 1, to), address, coin, 10 * fee, None)
            certificate = await gateway.driver.execute(SignedTransaction.sign(data, key), 60)
            assert certificate.data.status.is_success()
            new_coin = certificate.data.gas_object()
            assert new_coin is not None
            coin = new_coin
            certified += 1

    senders = [asyncio.ensure_future(sender(i)) for i in range(len(keys))]
    restarted: subprocess.Popen[bytes] | None = None
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while certified < 20:
                await asyncio.sleep(0.1)
        procs[KILLED].send_signal(signal.SIGKILL)
        procs[KILLED].wait()
        during = certified
        async with asyncio.timeout(TIMEOUT_S):
            while certified < during + 40:
                await asyncio.sleep(0.1)
        (tmp_path / "restart").mkdir()
        restarted = start_nodes([net.validator_configs[KILLED]], tmp_path / "restart")[0]
        procs[KILLED] = restarted
        after = certified
        async with asyncio.timeout(TIMEOUT_S):
            while certified < after + 20:
                await asyncio.sleep(0.1)
        stop_sending.set()
        await asyncio.gather(*senders)

        clients = [ValidatorClient(c.network_address) for c in configs]
        try:
            async with asyncio.timeout(TIMEOUT_S):
                while True:
                    try:
                        roots = {(await c.get_status()).state_root for c in clients}
                    except ValidatorCallError:
                        roots = set()
                    if len(roots) == 1:
                        break
                    await asyncio.sleep(0.2)
        finally:
            for client in clients:
                await client.close()
    finally:
        stop_sending.set()
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await gateway.close()
        stop_nodes(procs)
    assert certified >= 80
