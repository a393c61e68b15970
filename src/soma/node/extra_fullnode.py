"""`soma config fullnode`: the files of one more fullnode of a local network.

The new node's directory is self-contained, so it can be copied to another machine:
its own keys (fresh), a copy of the network's genesis, and a config that listens on
free ports and names the network's validators as seed peers (their P2P addresses with
their peer ids, as the network's own fullnode has them). Discovery finds every other
node from there; state sync catches up from whoever serves the chain.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import yaml

from soma.consensus.local_committee import free_ports
from soma.node.layout import FULLNODE_CONFIG, GENESIS_FILE
from soma.node.local_network import HOST, GenesisArgumentError
from soma.types.config import dump_yaml
from soma.types.crypto import NetworkKeyPair, ProtocolKeyPair, write_key_file

CONFIG_NAME = "fullnode.yaml"


@dataclasses.dataclass(frozen=True)
class ExtraFullnode:
    config: Path
    api_url: str
    metrics_url: str


def write_extra_fullnode(network: Path, out: Path) -> ExtraFullnode:
    """Write a fullnode of the network in `network` into `out` (new or empty)."""
    source = network / FULLNODE_CONFIG
    if not (network / GENESIS_FILE).is_file() or not source.is_file():
        raise GenesisArgumentError(f"{network} holds no network (no {GENESIS_FILE})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenesisArgumentError(f"{out} is not empty: choose a new or empty directory")
    seeds = (yaml.safe_load(source.read_text()) or {}).get("seed_peers") or []
    if not seeds:
        raise GenesisArgumentError(f"{source} names no seed peers to start from")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(network / GENESIS_FILE, out / GENESIS_FILE)
    write_key_file(out / "protocol.key", ProtocolKeyPair.generate())
    write_key_file(out / "network.key", NetworkKeyPair.generate())
    service, api, p2p, metrics = free_ports(4, HOST)
    config = out / CONFIG_NAME
    dump_yaml(
        config,
        {
            "role": "fullnode",
            "genesis": GENESIS_FILE,
            "db_path": "db",
            "keys": {"protocol": "protocol.key", "network": "network.key"},
            "network_address": f"{HOST}:{service}",
            "api_address": f"{HOST}:{api}",
            "p2p_address": f"{HOST}:{p2p}",
            "metrics_address": f"{HOST}:{metrics}",
            "seed_peers": seeds,
        },
    )
    return ExtraFullnode(
        config.resolve(), f"http://{HOST}:{api}", f"http://{HOST}:{metrics}/metrics"
    )
