"""One of four validator processes SIGKILLed during a stream of transfers: transfers keep
being certified by the other three; restarted on its store, it catches up to the same
state root."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from soma.authority.service_client import ValidatorCallError
from soma.node.local_network import create_local_network, validator_client, validator_routes
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_client_config, load_keystore, load_node_config
from tests.e2e.test_validator_nodes import start_nodes, stop_nodes
from tests.e2e.transfer_load import TransferLoad

KILLED = 3
TIMEOUT_S = 90.0


async def test_sigkill_one_validator_under_transfers_and_restart(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", validators=4, accounts=4, balance=10**9)
    configs = [load_node_config(p) for p in net.validator_configs]
    keys = load_keystore(load_client_config(net.client_config).keystore_path)
    procs = start_nodes(net.validator_configs, tmp_path)
    gateway = await RemoteReader.connect(*validator_routes(configs))
    load = TransferLoad(gateway, keys)
    load.start()
    restarted: subprocess.Popen[bytes] | None = None
    try:
        await load.until(20, TIMEOUT_S)
        procs[KILLED].send_signal(signal.SIGKILL)
        procs[KILLED].wait()
        await load.until(load.certified + 40, TIMEOUT_S)
        (tmp_path / "restart").mkdir()
        restarted = start_nodes([net.validator_configs[KILLED]], tmp_path / "restart")[0]
        procs[KILLED] = restarted
        await load.until(load.certified + 20, TIMEOUT_S)
        await load.stop()

        clients = [validator_client(c) for c in configs]
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
        await load.cancel()
        await gateway.close()
        stop_nodes(procs)
    assert load.certified >= 80
