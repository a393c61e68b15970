"""`soma validator new`: the files of a candidate validator for an existing network.

A candidate is a node that will ask to join the committee (`soma client validator
join`). Its directory is self-contained, like one more fullnode's (`extra_fullnode`):
fresh authority, protocol and network keys, a copy of the network's genesis, and a
config with role `validator` that listens on free ports and names the network's
validators as seed peers. Until it is in the committee it runs as a fullnode and
follows the chain by state sync; from the epoch it joins, it takes part in consensus.

The candidate's account (which sends its validator transactions and owns its stake)
is a fourth key, `account.key`, next to the config: a node config takes no unknown
field, so the client commands find the account beside the config they are given.

Only light modules are imported at the top: the client commands read candidates
through `load_candidate` and should not load the node (gRPC) to do so.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import yaml

from soma.types.config import NodeConfig, NodeRole, dump_yaml, load_node_config
from soma.types.crypto import (
    AccountKeyPair,
    AuthorityKeyPair,
    NetworkKeyPair,
    ProtocolKeyPair,
    read_key_file,
    write_key_file,
)
from soma.types.error import FormatError, SomaError

CONFIG_NAME = "validator.yaml"
#: The candidate's account key, next to its config.
ACCOUNT_KEY = "account.key"


class CandidateError(SomaError):
    """A candidate cannot be written (no network, a directory in use) or read."""

    code = "INVALID_CANDIDATE"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A candidate validator: its node config (keys, addresses), its account, and the
    name it registers (its directory's name unless given)."""

    config: NodeConfig
    account: AccountKeyPair

    @property
    def authority(self) -> AuthorityKeyPair:
        key = self.config.keys.authority
        assert key is not None  # a validator config has one (load_candidate checks)
        return key

    @property
    def default_hostname(self) -> str:
        return self.config.path.resolve().parent.name


def write_candidate(network: Path, out: Path) -> tuple[Path, AccountKeyPair]:
    """Write a candidate validator of the network in `network` into `out` (new or
    empty); returns its config's path and its account."""
    # Heavy (the node's modules): imported here, not by `load_candidate`'s callers.
    from soma.consensus.local_committee import free_ports
    from soma.node.layout import FULLNODE_CONFIG, GENESIS_FILE
    from soma.node.local_network import HOST

    source = network / FULLNODE_CONFIG
    if not (network / GENESIS_FILE).is_file() or not source.is_file():
        raise CandidateError(f"{network} holds no network (no {GENESIS_FILE})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CandidateError(f"{out} is not empty: choose a new or empty directory")
    fullnode = _read(source)
    seeds = fullnode.get("seed_peers") or []
    if not seeds:
        raise CandidateError(f"{source} names no seed peers to start from")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(network / GENESIS_FILE, out / GENESIS_FILE)
    account = AccountKeyPair.generate()
    keys = {
        "authority": AuthorityKeyPair.generate(),
        "protocol": ProtocolKeyPair.generate(),
        "network": NetworkKeyPair.generate(),
    }
    for role, key in keys.items():
        write_key_file(out / f"{role}.key", key)
    write_key_file(out / ACCOUNT_KEY, account)
    service, consensus, p2p = free_ports(3, HOST)
    config: dict[str, Any] = {
        "role": "validator",
        "genesis": GENESIS_FILE,
        "db_path": "db",
        "keys": {
            "authority": "authority.key",
            "protocol": "protocol.key",
            "network": "network.key",
        },
        "network_address": f"{HOST}:{service}",
        "consensus_address": f"{HOST}:{consensus}",
        "p2p_address": f"{HOST}:{p2p}",
        "seed_peers": seeds,
    }
    # Where the network's nodes listen now, if their ports moved after genesis.
    if fullnode.get("validator_addresses"):
        config["validator_addresses"] = fullnode["validator_addresses"]
    peers = _moved_consensus_addresses(network)
    if peers:
        config["peer_addresses"] = peers
    path = out / CONFIG_NAME
    dump_yaml(path, config)
    return path.resolve(), account


def _moved_consensus_addresses(network: Path) -> dict[str, str]:
    """Where the network's validators listen for consensus, by hostname, when their
    ports moved after genesis (`soma.node.ports` then gives every validator the others'
    addresses as `peer_addresses`); empty when nothing moved."""
    from soma.node.layout import count_validators, validator_config_name

    configs = [_read(network / validator_config_name(i)) for i in range(count_validators(network))]
    if not any(c.get("peer_addresses") for c in configs):
        return {}
    return {
        f"validator-{i}": c["consensus_address"]
        for i, c in enumerate(configs)
        if isinstance(c.get("consensus_address"), str)
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CandidateError(f"cannot read {path}: {e}") from None
    return data if isinstance(data, dict) else {}


def _account_key_path(config: Path) -> Path:
    """`account.key` next to the config (a candidate's directory), else next to the
    validator's authority key (a local network's founders: `validator-N/`)."""
    beside = config.parent / ACCOUNT_KEY
    if beside.is_file():
        return beside
    keys = _read(config).get("keys")
    authority = keys.get("authority") if isinstance(keys, dict) else None
    if isinstance(authority, str):
        with_keys = (config.parent / authority).parent / ACCOUNT_KEY
        if with_keys.is_file():
            return with_keys
    return beside


def load_candidate(path: Path) -> Candidate:
    """The candidate whose node config is `path`: a validator config with the account
    key `account.key` next to it or next to its authority key. `ConfigError` or
    `CandidateError` name what is wrong."""
    if not path.is_file():
        raise CandidateError(f"no validator config at {path}")
    config = load_node_config(path)
    if config.role is not NodeRole.VALIDATOR or config.keys.authority is None:
        raise CandidateError(f"{path} is not a validator's config (role {config.role.value})")
    account_path = _account_key_path(path)
    try:
        account = read_key_file(account_path, AccountKeyPair)
    except (SomaError, FormatError) as e:
        raise CandidateError(
            f"no validator account next to {path}: {e.message} (`soma validator new` "
            f"writes it as {ACCOUNT_KEY})"
        ) from None
    return Candidate(config, account)
