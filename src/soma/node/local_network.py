"""Files of a local network: `soma genesis` writes them, `soma start` runs them.

One directory holds everything, with paths relative to it:

    genesis.blob            the genesis transaction (BCS)
    validator-<i>.yaml      one config per validator, keys under validator-<i>/
    fullnode.yaml           a fullnode serving the public HTTP API
    client.yaml             the client's config: API URL, keystore, active address
    keystore.yaml           the funded accounts' keys (base64)
    faucet.key              the faucet's account, funded at genesis

Ports are chosen free on 127.0.0.1 when the directory is created and recorded in the
configs, so two networks in two directories run side by side.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from soma.consensus.local_committee import free_ports
from soma.types.committee import Committee, CommitteeMember
from soma.types.config import dump_yaml
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
from soma.types.transaction import TransactionData

GENESIS_FILE = "genesis.blob"
CLIENT_CONFIG = "client.yaml"
KEYSTORE = "keystore.yaml"
FULLNODE_CONFIG = "fullnode.yaml"
#: The faucet's account: funded at genesis with `FAUCET_BALANCE` in one coin.
FAUCET_KEY = "faucet.key"
FAUCET_BALANCE = 2**62
HOST = "127.0.0.1"
MAX_VALIDATORS = 100
MAX_ACCOUNTS = 10_000


class GenesisArgumentError(SomaError):
    code = "GENESIS_INVALID_ARGUMENT"


def validator_config_name(index: int) -> str:
    return f"validator-{index}.yaml"


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
) -> LocalNetwork:
    """Write a new network's files into `directory` (which must not hold one already)."""
    if not 1 <= validators <= MAX_VALIDATORS:
        raise GenesisArgumentError(f"validators must be 1 to {MAX_VALIDATORS}, got {validators}")
    if not 0 <= accounts <= MAX_ACCOUNTS:
        raise GenesisArgumentError(f"accounts must be 0 to {MAX_ACCOUNTS}, got {accounts}")
    if not 0 < balance < 2**64:
        raise GenesisArgumentError(f"balance must be 1 to 2^64-1, got {balance}")
    if epoch_duration_ms <= 0:
        raise GenesisArgumentError(f"epoch duration must be positive, got {epoch_duration_ms}")
    root = Path(directory)
    if (root / GENESIS_FILE).exists():
        raise GenesisArgumentError(f"{root} already holds a network (genesis.blob exists)")
    root.mkdir(parents=True, exist_ok=True)

    ports = iter(free_ports(3 * validators + 2, HOST))
    members = []
    keys = []
    for i in range(validators):
        authority, protocol, network = (
            AuthorityKeyPair.generate(),
            ProtocolKeyPair.generate(),
            NetworkKeyPair.generate(),
        )
        addresses = [f"{HOST}:{next(ports)}" for _ in range(3)]
        members.append(
            CommitteeMember(
                name=authority.name,
                stake=1,
                protocol_key=protocol.public_key,
                network_key=network.public_key,
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
    parameters = dataclasses.replace(DEFAULT_PARAMETERS, epoch_duration_ms=epoch_duration_ms)
    genesis = build_genesis_transaction(
        validators_from_committee(committee, [k[3].public_key.to_address() for k in ordered]),
        [GenesisCoin(a.public_key.to_address(), balance) for a in funded]
        + [GenesisCoin(faucet.public_key.to_address(), FAUCET_BALANCE)],
        parameters,
    )
    (root / GENESIS_FILE).write_bytes(genesis.to_bytes())

    configs = []
    for i, (member, (authority, protocol, network, account)) in enumerate(
        zip(committee.members, ordered, strict=True)
    ):
        name = f"validator-{i}"
        for role, key in (
            ("authority", authority),
            ("protocol", protocol),
            ("network", network),
            ("account", account),
        ):
            write_key_file(root / name / f"{role}.key", key)
        config = root / validator_config_name(i)
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
            },
        )
        configs.append(config)

    write_key_file(root / "fullnode" / "protocol.key", ProtocolKeyPair.generate())
    write_key_file(root / "fullnode" / "network.key", NetworkKeyPair.generate())
    fullnode_address, api_port = f"{HOST}:{next(ports)}", next(ports)
    dump_yaml(
        root / FULLNODE_CONFIG,
        {
            "role": "fullnode",
            "genesis": GENESIS_FILE,
            "db_path": "fullnode/db",
            "keys": {"protocol": "fullnode/protocol.key", "network": "fullnode/network.key"},
            "network_address": fullnode_address,
            "api_address": f"{HOST}:{api_port}",
        },
    )
    api_url = f"http://{HOST}:{api_port}"
    dump_yaml(root / KEYSTORE, [a.to_base64() for a in funded], private=True)
    write_key_file(root / FAUCET_KEY, faucet)
    dump_yaml(
        root / CLIENT_CONFIG,
        {
            "api_url": api_url,
            "keystore": KEYSTORE,
            "active_address": funded[0].public_key.to_address().to_hex() if funded else None,
        },
    )
    return LocalNetwork(
        root, configs, root / FULLNODE_CONFIG, root / CLIENT_CONFIG, funded, api_url
    )
