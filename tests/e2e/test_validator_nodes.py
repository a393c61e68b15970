"""Four `soma node` processes from `soma genesis`: a transfer through the validator
service gets an effects certificate, balances move by the amount and the fee, and a
restart keeps them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc

from soma.authority import service_wire
from soma.authority.effects_certificate import EffectsCertifier
from soma.authority.service_client import RemoteError, ValidatorClient
from soma.consensus.network import tls
from soma.node.local_network import create_local_network, read_genesis, validator_client
from soma.orchestrator.quorum_driver import QuorumDriver
from soma.types.config import load_client_config, load_keystore, load_node_config
from soma.types.effects import ExecutionFailure, InputObjectConsumed
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.system_state import SystemState
from soma.types.tls import tls_identity
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin

START_TIMEOUT_S = 60.0


def start_nodes(configs: list[Path], logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i, config in enumerate(configs):
        log = open(logs / f"node-{i}.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "soma",
                    "node",
                    "--config",
                    str(config),
                    "--log-level",
                    "WARNING",
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
    for i, proc in enumerate(procs):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(b"READY"), (logs / f"node-{i}.log").read_text()[-3000:]
    return procs


def stop_nodes(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=30))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


async def balance_of(client: ValidatorClient, address: object) -> int:
    answer = await client.get_balance(address)  # type: ignore[arg-type]
    return answer.balance


async def test_transfer_through_validator_nodes_and_restart(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", validators=4, accounts=2, balance=1_000_000)
    configs = [load_node_config(p) for p in net.validator_configs]
    keys = load_keystore(load_client_config(net.client_config).keystore_path)
    sender, recipient = keys[0], keys[1].public_key.to_address()
    procs = start_nodes(net.validator_configs, tmp_path)
    clients = [validator_client(c) for c in configs]
    try:
        status = await clients[0].get_status()
        committee = SystemState.committee(status.system_state)
        owned = (await clients[0].get_owned_objects(sender.public_key.to_address())).objects
        coin = owned[0]
        fee = DEFAULT_PARAMETERS.transaction_fee
        data = TransactionData(
            TransferCoin(coin, 1234, recipient),
            sender.public_key.to_address(),
            coin,
            10 * fee,
            None,
        )
        tx = SignedTransaction.sign(data, sender)
        digest = await clients[1].submit(tx)
        assert digest == tx.digest()
        certifier = EffectsCertifier(committee)
        certificate = None
        async with asyncio.timeout(START_TIMEOUT_S):
            for client in clients:
                answer = await client.wait_for_effects(digest, timeout_s=30)
                assert answer.effects is not None
                certificate = certifier.add(answer.effects)
        assert certificate is not None and certificate.data.status.is_success()
        certificate.verify(committee)
        for client in clients:
            assert await balance_of(client, recipient) == 1_000_000 + 1234
            assert (
                await balance_of(client, sender.public_key.to_address()) == 1_000_000 - 1234 - fee
            )
        # The spent ref is refused with a typed, coded error.
        try:
            await clients[2].submit(
                tx.__class__.sign(
                    TransactionData(
                        TransferCoin(coin, 1, recipient), data.sender, coin, 10 * fee, None
                    ),
                    sender,
                )
            )
        except RemoteError as e:
            assert e.remote_code == "OBJECT_VERSION_UNAVAILABLE"
        else:
            raise AssertionError("a spent coin was accepted")
        # Garbage is refused as INVALID_ARGUMENT, and the node keeps serving.
        pinned = tls_identity(configs[0].keys.network).certificate_der
        async with tls.dial(configs[0].network_address, pinned, []) as channel:
            call = channel.unary_unary(service_wire.SUBMIT)
            try:
                await call(b"\x01garbage", timeout=10)
            except grpc.aio.AioRpcError as e:
                assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
            else:
                raise AssertionError("garbage was accepted")
        assert (await clients[0].get_status()).latest_commit > 0
    finally:
        for client in clients:
            await client.close()
        codes = stop_nodes(procs)
    assert codes == [0, 0, 0, 0]

    procs = start_nodes(net.validator_configs, tmp_path)
    clients = [validator_client(c) for c in configs]
    try:
        for client in clients:
            assert await balance_of(client, recipient) == 1_000_000 + 1234
        assert read_genesis(configs[0].genesis_path) is not None
        # Transfers go on after the restart, from the coin the first one left.
        assert certificate is not None
        gas = certificate.data.gas_object()
        assert gas is not None
        again = SignedTransaction.sign(
            TransactionData(TransferCoin(gas, 66, recipient), data.sender, gas, 10 * fee, None),
            sender,
        )
        driver = QuorumDriver.for_committee(committee)
        try:
            second = await driver.execute(again, timeout_s=START_TIMEOUT_S)
            assert second.data.status.is_success()
            second.verify(committee)
            # The same spent ref again: refused by a quorum with the validators' code, or
            # (accepted by a validator that had not executed the transfer yet) ordered
            # and certified as a failure that changes nothing. Never a second spend.
            try:
                stale = await driver.execute(
                    again.__class__.sign(
                        TransactionData(
                            TransferCoin(gas, 1, recipient), data.sender, gas, 10 * fee, None
                        ),
                        sender,
                    )
                )
            except RemoteError as e:
                assert e.remote_code == "OBJECT_VERSION_UNAVAILABLE"
            else:
                assert isinstance(stale.data.status, ExecutionFailure)
                assert isinstance(stale.data.status.error, InputObjectConsumed)
                assert stale.data.gas_used == 0
        finally:
            await driver.close()
        assert await balance_of(clients[0], recipient) == 1_000_000 + 1234 + 66
    finally:
        for client in clients:
            await client.close()
        assert stop_nodes(procs) == [0, 0, 0, 0]
