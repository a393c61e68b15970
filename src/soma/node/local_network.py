"""Files of a local network: `soma genesis` writes them, `soma start` runs them.

One directory holds everything (its entries are named in `soma.node.layout`), with
paths relative to it. Ports are chosen free on 127.0.0.1 when the directory is created
and recorded in the configs, so two networks in two directories run side by side.

A new network is written whole into a staging directory first and moved into place
with `genesis.blob` last: a directory holds a network exactly when it holds
`genesis.blob`, and an interrupted genesis leaves nothing that looks like one.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from soma.authority.service_client import ValidatorClient
from soma.consensus.local_committee import free_ports
from soma.node.hosts import NodeAddress
from soma.node.layout import (
    CLIENT_CONFIG,
    FAUCET_KEY,
    FULLNODE_CONFIG,
    GENESIS_FILE,
    KEYSTORE,
    LOCK_FILE,
    PORTS_FILE,
    STAGING_DIR,
    count_validators,
    foreign_entries,
    validator_config_name,
)
from soma.node.ports import record_ports
from soma.types.base import AuthorityName
from soma.types.committee import Committee, CommitteeMember
from soma.types.config import NodeConfig, dump_yaml
from soma.types.crypto import (
    AccountKeyPair,
    AuthorityKeyPair,
    NetworkKeyPair,
    ProtocolKeyPair,
    write_key_file,
)
from soma.types.error import SomaError
from soma.types.genesis import (
    DEFAULT_PARAMETERS,
    GenesisCoin,
    build_genesis_transaction,
    validators_from_committee,
)
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemParameters, SystemState
from soma.types.tls import tls_identity
from soma.types.transaction import GenesisTransaction, TransactionData

#: Each founding validator's account is funded at genesis with this, in one coin.
FOUNDER_BALANCE = 10**12
#: The faucet's account (`FAUCET_KEY`) is funded at genesis with this, in one coin.
FAUCET_BALANCE = 2**62
HOST = "127.0.0.1"
MAX_VALIDATORS = 100
MAX_ACCOUNTS = 10_000


class GenesisArgumentError(SomaError):
    code = "GENESIS_INVALID_ARGUMENT"


@dataclasses.dataclass(frozen=True)
class LocalNetwork:
    directory: Path
    validator_configs: list[Path]
    fullnode_config: Path
    client_config: Path
    accounts: list[AccountKeyPair]
    api_url: str


def read_genesis(path: str | os.PathLike[str]) -> TransactionData:
    return TransactionData.from_bytes(Path(path).read_bytes())


def create_local_network(
    directory: str | os.PathLike[str],
    validators: int = 4,
    accounts: int = 5,
    balance: int = 10**15,
    epoch_duration_ms: int = DEFAULT_PARAMETERS.epoch_duration_ms,
    hosts: Mapping[str, NodeAddress] | None = None,
    min_validator_stake: int = DEFAULT_PARAMETERS.min_validator_stake,
) -> LocalNetwork:
    """Write a new network's files into `directory` (which must not hold one already).
    Without `hosts`, every node runs on this machine on free loopback ports; with it
    (`soma.node.hosts`), each node binds and is dialled at the address given for it.
    `epoch_duration_ms` and `min_validator_stake` go into the genesis parameters."""
    if not 1 <= validators <= MAX_VALIDATORS:
        raise GenesisArgumentError(f"validators must be 1 to {MAX_VALIDATORS}, got {validators}")
    if not 0 <= accounts <= MAX_ACCOUNTS:
        raise GenesisArgumentError(f"accounts must be 0 to {MAX_ACCOUNTS}, got {accounts}")
    if not 0 < balance < 2**64:
        raise GenesisArgumentError(f"balance must be 1 to 2^64-1, got {balance}")
    parameters = genesis_parameters(epoch_duration_ms, min_validator_stake)
    root = Path(directory)
    check_can_create(root)
    root.mkdir(parents=True, exist_ok=True)
    stage = root / STAGING_DIR
    if stage.exists():
        shutil.rmtree(stage)  # an earlier genesis that did not finish
    stage.mkdir()

    # Per validator its service, consensus, P2P and metrics ports; the fullnode's
    # service, API, P2P and metrics ports.
    ports = iter(free_ports(4 * validators + 4, HOST))

    def node_addresses(name: str) -> list[str]:
        if hosts is not None:
            return [hosts[name].service(k) for k in range(4)]
        return [f"{HOST}:{next(ports)}" for _ in range(4)]

    members = []
    keys = []
    #: Validator hostname -> its metrics address (not in the committee: a node's own).
    metrics_addresses: dict[str, str] = {}
    for i in range(validators):
        authority, protocol, network = (
            AuthorityKeyPair.generate(),
            ProtocolKeyPair.generate(),
            NetworkKeyPair.generate(),
        )
        addresses = node_addresses(f"validator-{i}")
        metrics_addresses[f"validator-{i}"] = addresses[3]
        members.append(
            CommitteeMember(
                name=authority.name,
                # The stake a candidate joins with by default: a joiner weighs as much
                # as each founder (a founder staked at 1 would hand a joiner the quorum).
                stake=min_validator_stake,
                protocol_key=protocol.public_key,
                network_key=network.public_key,
                tls_certificate=tls_identity(network).certificate_der,
                hostname=f"validator-{i}",
                network_address=addresses[0],
                consensus_address=addresses[1],
                p2p_address=addresses[2],
            )
        )
        keys.append((authority, protocol, network, AccountKeyPair.generate()))
    committee = Committee.new(0, members)
    by_name = {k[0].name: k for k in keys}
    ordered = [by_name[m.name] for m in committee.members]

    funded = [AccountKeyPair.generate() for _ in range(accounts)]
    faucet = AccountKeyPair.generate()
    genesis = build_genesis_transaction(
        validators_from_committee(committee, [k[3].public_key.to_address() for k in ordered]),
        [GenesisCoin(a.public_key.to_address(), balance) for a in funded]
        + [GenesisCoin(faucet.public_key.to_address(), FAUCET_BALANCE)]
        # The founders' own accounts pay for their validator transactions (stake,
        # unstake, leave).
        + [GenesisCoin(k[3].public_key.to_address(), FOUNDER_BALANCE) for k in ordered],
        parameters,
        # Epoch 0 starts now: from the epoch of the Unix clock, it would be over (and
        # change) at the first commit, whatever its duration.
        epoch_start_timestamp_ms=int(time.time() * 1000),
    )
    (stage / GENESIS_FILE).write_bytes(genesis.to_bytes())

    configs = []
    for member, (authority, protocol, network, account) in zip(
        committee.members, ordered, strict=True
    ):
        # Files are named by the member's hostname, so validator-<i>.yaml is the member
        # the committee calls validator-<i> (peers are named that way in configs).
        name = member.hostname
        for role, key in (
            ("authority", authority),
            ("protocol", protocol),
            ("network", network),
            ("account", account),
        ):
            write_key_file(stage / name / f"{role}.key", key)
        config = stage / f"{name}.yaml"
        dump_yaml(
            config,
            {
                "role": "validator",
                "genesis": GENESIS_FILE,
                "db_path": f"{name}/db",
                "keys": {
                    "authority": f"{name}/authority.key",
                    "protocol": f"{name}/protocol.key",
                    "network": f"{name}/network.key",
                },
                "network_address": member.network_address,
                "consensus_address": member.consensus_address,
                "p2p_address": member.p2p_address,
                "metrics_address": metrics_addresses[name],
            },
        )
        configs.append(config)

    write_key_file(stage / "fullnode" / "protocol.key", ProtocolKeyPair.generate())
    write_key_file(stage / "fullnode" / "network.key", NetworkKeyPair.generate())
    fullnode_address, api_address, fullnode_p2p, fullnode_metrics = node_addresses("fullnode")
    dump_yaml(
        stage / FULLNODE_CONFIG,
        {
            "role": "fullnode",
            "genesis": GENESIS_FILE,
            "db_path": "fullnode/db",
            "keys": {"protocol": "fullnode/protocol.key", "network": "fullnode/network.key"},
            "network_address": fullnode_address,
            "api_address": api_address,
            "p2p_address": fullnode_p2p,
            "metrics_address": fullnode_metrics,
            "seed_peers": seed_peers(committee),
            "faucet_key": FAUCET_KEY,
        },
    )
    api_url = f"http://{api_address}"
    dump_yaml(stage / KEYSTORE, [a.to_base64() for a in funded], private=True)
    write_key_file(stage / FAUCET_KEY, faucet)
    dump_yaml(
        stage / CLIENT_CONFIG,
        {
            "api_url": api_url,
            "keystore": KEYSTORE,
            "active_address": funded[0].public_key.to_address().to_hex() if funded else None,
        },
    )
    if hosts is None:
        # Ports soma chose, which `soma start` may move; addresses given are kept as set.
        record_ports(stage, validators)
    _move_into_place(stage, root)
    return LocalNetwork(
        root,
        [root / validator_config_name(i) for i in range(validators)],
        root / FULLNODE_CONFIG,
        root / CLIENT_CONFIG,
        funded,
        api_url,
    )


def genesis_parameters(epoch_duration_ms: int, min_validator_stake: int) -> SystemParameters:
    """The default parameters with the two a local network's user sets; each must be a
    positive u64 (an epoch of no time, or a validator with no stake, cannot run)."""
    for name, value in (
        ("epoch duration", epoch_duration_ms),
        ("minimum validator stake", min_validator_stake),
    ):
        if not 0 < value < 2**64:
            raise GenesisArgumentError(f"{name} must be 1 to 2^64-1, got {value}")
    return dataclasses.replace(
        DEFAULT_PARAMETERS,
        epoch_duration_ms=epoch_duration_ms,
        min_validator_stake=min_validator_stake,
    )


def seed_peers(committee: Committee) -> list[dict[str, str]]:
    """The validators' P2P addresses with their peer ids, as a config's `seed_peers`:
    a node outside the committee learns everyone else from them."""
    return [{"address": m.p2p_address, "peer_id": m.network_key.hex()} for m in committee.members]


def check_can_create(root: Path) -> None:
    """Refuse to write a network into a directory that holds anything but the lock and
    the staging directory of an earlier, interrupted genesis."""
    if (root / GENESIS_FILE).exists():
        raise GenesisArgumentError(f"{root} already holds a network (genesis.blob exists)")
    foreign = foreign_entries(root)
    if foreign:
        raise GenesisArgumentError(
            f"{root} is not empty and holds no network ({_listing(foreign)}); "
            "choose an empty or new directory"
        )
    partial = (
        sorted(e.name for e in root.iterdir() if e.name not in (LOCK_FILE, STAGING_DIR))
        if root.is_dir()
        else []
    )
    if partial:
        raise GenesisArgumentError(
            f"{root} holds part of a network but no genesis.blob ({_listing(partial)}), "
            "left by an interrupted genesis or removal: `soma start --force-regenesis` "
            "clears it, or choose another directory"
        )


def _listing(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def _move_into_place(stage: Path, root: Path) -> None:
    """Move the staged network into `root`, genesis last (it marks a whole network)."""
    entries = sorted(stage.iterdir(), key=lambda e: e.name == GENESIS_FILE)
    for entry in entries:
        os.replace(entry, root / entry.name)
    stage.rmdir()


def open_stores(root: Path) -> list[Path]:
    """The RocksDB stores under `root` that some process has open: RocksDB holds a POSIX
    record lock on each store's LOCK file while it is open, which a probe from another
    process sees. Belt and braces beside the directory lock, for a node started by
    anything other than `soma start` or `soma node`."""
    found = []
    for lock_file in sorted(root.glob("*/db/**/LOCK")):
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            found.append(lock_file.parent)
        finally:
            os.close(fd)  # closing drops the probe's own lock, if it got one
    return found


def remove_network(root: Path) -> None:
    """Delete the network in `root` (the caller holds its lock), or what an interrupted
    genesis or removal left of one, after checking that every entry is one a network
    has: anything else stops it before anything is deleted."""
    foreign = foreign_entries(root)
    if foreign:
        raise GenesisArgumentError(
            f"{root} holds entries that are not part of a network ({_listing(foreign)}); "
            "nothing was deleted: move them away first"
        )
    in_use = open_stores(root)
    if in_use:
        raise GenesisArgumentError(
            f"a process still has the store {in_use[0]} open; nothing was deleted: "
            "stop every node of the network first"
        )
    # genesis.blob goes first: a directory interrupted here no longer claims a network.
    (root / GENESIS_FILE).unlink(missing_ok=True)
    for entry in sorted(root.iterdir()):
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def upgrade_node_configs(root: Path) -> None:
    """Give the configs of a network written by an earlier soma what the nodes now
    need: the fullnode (it serves the API and the faucet) a P2P address (a free port,
    recorded as soma's choice), the validators as seed peers, the faucet's key; every
    node a metrics address."""
    path = root / FULLNODE_CONFIG
    config = yaml.safe_load(path.read_text()) or {}
    changed = False
    if "p2p_address" not in config:
        config["p2p_address"] = f"{HOST}:{free_ports(1, HOST)[0]}"
        changed = True
    if "seed_peers" not in config:
        config["seed_peers"] = seed_peers(genesis_committee(read_genesis(root / GENESIS_FILE)))
        changed = True
    if "faucet_key" not in config and (root / FAUCET_KEY).is_file():
        config["faucet_key"] = FAUCET_KEY
        changed = True
    if changed:
        dump_yaml(path, config)
    _add_metrics_addresses(root)


def _add_metrics_addresses(root: Path) -> None:
    """Give each node of a network written before metrics a metrics address: a free
    port, recorded in `ports.yaml` as soma's choice (so `soma start` may move it)."""
    names = [validator_config_name(i) for i in range(count_validators(root))]
    names.append(FULLNODE_CONFIG)
    ports_path = root / PORTS_FILE
    recorded = yaml.safe_load(ports_path.read_text()) if ports_path.is_file() else None
    recorded = recorded if isinstance(recorded, dict) else None
    for name in names:
        config = yaml.safe_load((root / name).read_text()) or {}
        if "metrics_address" in config:
            continue
        config["metrics_address"] = f"{HOST}:{free_ports(1, HOST)[0]}"
        dump_yaml(root / name, config)
        if recorded is not None:
            recorded.setdefault(name, {})["metrics_address"] = config["metrics_address"]
    if recorded is not None:
        dump_yaml(ports_path, recorded)


def genesis_committee(genesis: TransactionData) -> Committee:
    """The committee of epoch 0, as the genesis transaction's system state holds it."""
    return genesis_system_state(genesis).committee()


def genesis_system_state(genesis: TransactionData) -> SystemState:
    """The system state the genesis transaction creates (epoch 0)."""
    kind = genesis.kind
    if isinstance(kind, GenesisTransaction):
        for obj in kind.objects:
            if obj.id == SYSTEM_STATE_OBJECT_ID:
                return SystemState.from_object(obj)
    raise GenesisArgumentError("the genesis transaction holds no system state")


def validator_routes(configs: Sequence[NodeConfig]) -> tuple[Committee, dict[AuthorityName, str]]:
    """The genesis committee of the network the validators of `configs` run, and the
    address each of them listens on now (the committee's may have moved)."""
    if not configs:
        raise GenesisArgumentError("no validator configuration given")
    committee = genesis_committee(read_genesis(configs[0].genesis_path))
    routes = {
        c.keys.authority.name: c.network_address for c in configs if c.keys.authority is not None
    }
    return committee, routes


def validator_client(config: NodeConfig) -> ValidatorClient:
    """A client of the validator that `config` runs, pinned to its TLS certificate."""
    return ValidatorClient(
        config.network_address, tls_identity(config.keys.network).certificate_der
    )
