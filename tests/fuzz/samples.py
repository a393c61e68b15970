"""Valid encodings to seed the fuzzers with: a local network's files and genesis, a signed
transfer, and the blocks, commits and messages of a short in-process consensus run."""

from __future__ import annotations

import functools
import shutil

from soma.consensus import messages
from soma.consensus.network import wire as consensus_wire
from soma.node.local_network import create_local_network, read_genesis
from soma.types.config import load_keystore
from soma.types.crypto import NetworkKeyPair
from soma.types.tls import tls_identity
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin
from tests.consensus.core_harness import Cluster
from tests.fuzz import decoders


@functools.cache
def samples() -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}

    def add(name: str, raw: bytes) -> None:
        out.setdefault(name, []).append(raw)

    root = decoders._CONFIG_DIR
    net_dir = root / "net"
    shutil.rmtree(net_dir, ignore_errors=True)
    net = create_local_network(net_dir, validators=4, accounts=2)
    # The node config loader reads `node.yaml` next to the network's key directories.
    for entry in net_dir.iterdir():
        target = root / entry.name
        if entry.is_dir() and not target.exists():
            shutil.copytree(entry, target)
    add("node config", net.validator_configs[0].read_bytes())
    add("node config", (net_dir / "fullnode.yaml").read_bytes())
    add("client config", net.client_config.read_bytes())
    add("keystore", (net_dir / "keystore.yaml").read_bytes())
    add("TLS certificate", tls_identity(NetworkKeyPair(bytes([5]) * 32)).certificate_der)
    genesis = read_genesis(net_dir / "genesis.blob")
    add("soma.types.transaction.TransactionData", genesis.to_bytes())
    keys = load_keystore(net_dir / "keystore.yaml")
    sender = keys[0].public_key.to_address()
    coin = next(
        o.reference()
        for o in genesis.kind.objects  # type: ignore[union-attr]
        if o.is_coin() and o.owner_address() == sender
    )
    data = TransactionData(TransferCoin(coin, 5, sender), sender, coin, 10**6, None)
    tx = SignedTransaction.sign(data, keys[0])
    add("soma.types.transaction.TransactionData", data.to_bytes())
    add("soma.types.transaction.SignedTransaction", tx.to_bytes())

    cluster = Cluster()
    cluster.run_until_round(8)
    store = cluster.nodes[0].store
    blocks = list(store.scan_blocks_from(1))[:8]
    commits = list(store.scan_commits(1))[:4]
    for b in blocks:
        add("soma.types.consensus.block.SignedBlock", b.to_bytes())
        add("soma.consensus.messages.ConsensusMessage", messages.BlockPush(b.to_bytes()).to_bytes())
    for c in commits:
        add("soma.types.consensus.commit.Commit", c.to_bytes())
    add(
        "soma.consensus.network.wire.BlockBatch",
        consensus_wire.BlockBatch(tuple(b.to_bytes() for b in blocks)).to_bytes(),
    )
    add(
        "soma.consensus.network.wire.FetchCommitsResponse",
        consensus_wire.FetchCommitsResponse(
            tuple(c.to_bytes() for c in commits), tuple(b.to_bytes() for b in blocks[:3])
        ).to_bytes(),
    )
    return out
