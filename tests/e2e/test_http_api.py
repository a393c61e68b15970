"""The HTTP API in front of four `soma node` processes: reads, a certified transfer,
and every kind of bad input answered as JSON with a 4xx status."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn

from soma.consensus.local_committee import free_ports
from soma.node.local_network import create_local_network, validator_routes
from soma.orchestrator.remote_reader import RemoteReader
from soma.rpc.app import create_app
from soma.types.base import ObjectID
from soma.types.config import load_client_config, load_keystore, load_node_config
from soma.types.digests import ObjectDigest
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin
from tests.e2e.test_validator_nodes import start_nodes, stop_nodes


def call(url: str, body: object | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def test_http_api_over_validator_nodes(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", validators=4, accounts=2, balance=1_000_000)
    configs = [load_node_config(p) for p in net.validator_configs]
    keys = load_keystore(load_client_config(net.client_config).keystore_path)
    procs = start_nodes(net.validator_configs, tmp_path)
    reader = await RemoteReader.connect(*validator_routes(configs))
    port = free_ports(1)[0]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(reader), host="127.0.0.1", port=port, log_level="warning", log_config=None
        )
    )
    serving = asyncio.ensure_future(server.serve())
    base = f"http://127.0.0.1:{port}"

    async def get(path: str, body: object | None = None) -> tuple[int, Any]:
        return await asyncio.to_thread(call, base + path, body)

    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.05)
        status, health = await get("/health")
        assert status == 200 and health["status"] == "ok"
        sender = keys[0].public_key.to_address()
        recipient = keys[1].public_key.to_address()
        status, bal = await get(f"/addresses/{sender}/balance")
        assert status == 200 and bal["balance"] == 1_000_000
        status, page = await get(f"/addresses/{sender}/objects")
        assert status == 200 and page["next_cursor"] is None
        owned = page["objects"]
        assert len(owned) == 1
        coin = ObjectRef(
            ObjectID.from_hex(owned[0]["object_id"]),
            owned[0]["version"],
            ObjectDigest.from_base58(owned[0]["digest"]),
        )
        fee = DEFAULT_PARAMETERS.transaction_fee
        tx = SignedTransaction.sign(
            TransactionData(TransferCoin(coin, 500, recipient), sender, coin, 10 * fee, None),
            keys[0],
        )
        body = {"tx_bytes": base64.b64encode(tx.to_bytes()).decode()}
        status, result = await get("/transactions", body)
        assert status == 200, result
        assert result["status"] == "success" and result["fee"] == fee
        assert result["digest"] == str(tx.digest())
        status, bal = await get(f"/addresses/{recipient}/balance")
        assert bal["balance"] == 1_000_500
        status, bal = await get(f"/addresses/{sender}/balance")
        assert bal["balance"] == 1_000_000 - 500 - fee
        status, found = await get(f"/transactions/{tx.digest()}")
        assert status == 200 and found["effects"]["status"] == "success"
        status, obj = await get(f"/objects/{coin.object_id}")
        assert status == 200 and obj["balance"] == 1_000_000 - 500 - fee
        for path in ("/committee", "/status", "/commits/latest", "/openapi.json"):
            status, _ = await get(path)
            assert status == 200, path

        # Executing the same transaction again is idempotent: the same certificate.
        status, again = await get("/transactions", body)
        assert status == 200 and again["effects"]["digest"] == result["effects"]["digest"]
        # Bad input: JSON errors with a code, never a 500. First, the spent coin version.
        stale = SignedTransaction.sign(
            TransactionData(TransferCoin(coin, 7, recipient), sender, coin, 10 * fee, None),
            keys[0],
        )
        status, err = await get(
            "/transactions", {"tx_bytes": base64.b64encode(stale.to_bytes()).decode()}
        )
        assert status == 400 and err["code"] == "OBJECT_VERSION_UNAVAILABLE", err
        bad: list[tuple[str, object | None, int, str]] = [
            ("/addresses/0xzz/balance", None, 400, "INVALID_ADDRESS"),
            ("/objects/nothex", None, 400, "INVALID_OBJECT_ID"),
            (f"/objects/{ObjectID.from_int(999)}", None, 404, "OBJECT_NOT_FOUND"),
            ("/transactions/notbase58!", None, 400, "INVALID_DIGEST"),
            ("/transactions", {"tx_bytes": "%%%"}, 400, "INVALID_REQUEST"),
            ("/transactions", {"tx_bytes": base64.b64encode(b"junk").decode()}, 400, ""),
            ("/transactions", {"wrong": 1}, 400, "INVALID_REQUEST"),
            ("/nowhere", None, 404, "NOT_FOUND"),
        ]
        for path, payload, want_status, want_code in bad:
            status, err = await get(path, payload)
            assert status == want_status, (path, status, err)
            assert set(err) == {"code", "message"}, err
            if want_code:
                assert err["code"] == want_code, (path, err)
    finally:
        server.should_exit = True
        await serving
        await reader.close()
        assert stop_nodes(procs) == [0, 0, 0, 0]
