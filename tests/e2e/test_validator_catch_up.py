"""A validator down for longer than its peers keep consensus data catches up by state
sync, then takes part in consensus again.

Four validator processes keep only a short consensus history (`retained_commits`). One is
killed; the others run transfers until the commits it lacks are pruned everywhere. On
restart, commit sync cannot help it: it follows the certified chain by state sync,
resumes consensus at the commit it reached, and is then needed: with another validator
stopped, transfers go on only if it votes and executes. All three end on one state root.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import yaml

from soma.authority.service_client import RemoteError, ValidatorCallError, ValidatorClient
from soma.node.local_network import create_local_network, validator_client, validator_routes
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_client_config, load_keystore, load_node_config
from tests.e2e.test_validator_nodes import start_nodes, stop_nodes
from tests.e2e.transfer_load import TransferLoad

LAGGING, STOPPED_LATER = 3, 2
#: A short consensus history (the least the parameters allow) so it is soon pruned.
CONSENSUS = {"retained_commits": 110, "commits_per_schedule_update": 10, "gc_depth": 20}
#: Commits the lagging validator misses: well beyond what its peers keep.
MISSED = 200
TIMEOUT_S = 120.0


async def _ordered_commit(client: ValidatorClient) -> int:
    try:
        return (await client.get_status()).ordered_commit
    except (ValidatorCallError, RemoteError):
        return -1  # down, or catching up


async def test_a_validator_behind_the_retained_history_catches_up_and_rejoins(
    tmp_path: Path,
) -> None:
    net = create_local_network(tmp_path / "net", validators=4, accounts=4, balance=10**9)
    for path in net.validator_configs:
        document = yaml.safe_load(path.read_text())
        document["consensus"] = CONSENSUS
        path.write_text(yaml.safe_dump(document))
    configs = [load_node_config(p) for p in net.validator_configs]
    keys = load_keystore(load_client_config(net.client_config).keystore_path)
    procs = start_nodes(net.validator_configs, tmp_path)
    clients = [validator_client(c) for c in configs]
    gateway = await RemoteReader.connect(*validator_routes(configs))
    load = TransferLoad(gateway, keys)

    async def until(check: object, what: str) -> None:
        try:
            async with asyncio.timeout(TIMEOUT_S):
                while not await check():  # type: ignore[operator]
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"timed out waiting until {what}") from None

    load.start()
    try:
        await load.until(10, TIMEOUT_S)
        procs[LAGGING].send_signal(signal.SIGKILL)
        procs[LAGGING].wait()
        left_at = await _ordered_commit(clients[0])

        async def far_ahead() -> bool:
            return await _ordered_commit(clients[0]) >= left_at + MISSED

        await until(far_ahead, f"the network is {MISSED} commits further")
        (tmp_path / "restart").mkdir()
        procs[LAGGING] = start_nodes([net.validator_configs[LAGGING]], tmp_path / "restart")[0]

        async def caught_up() -> bool:
            mine = await _ordered_commit(clients[LAGGING])
            return mine >= 0 and mine + 20 >= await _ordered_commit(clients[0])

        await until(caught_up, "the restarted validator orders commits with the others")
        log = (tmp_path / "restart" / "node-0.log").read_text()
        assert "catching up by state sync" in log, log[-3000:]

        # Without a second validator, consensus and certificates need the one that
        # caught up.
        procs[STOPPED_LATER].send_signal(signal.SIGKILL)
        procs[STOPPED_LATER].wait()
        await load.until(load.certified + 20, TIMEOUT_S)
        await load.stop()

        live = [c for i, c in enumerate(clients) if i != STOPPED_LATER]

        async def one_root() -> bool:
            try:
                statuses = [await c.get_status() for c in live]
            except (ValidatorCallError, RemoteError):
                return False
            return len({(s.latest_commit, s.state_root) for s in statuses}) == 1

        await until(one_root, "the three live validators report one state root")
    finally:
        await load.cancel()
        await gateway.close()
        for client in clients:
            await client.close()
        stop_nodes(procs)
