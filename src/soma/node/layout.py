"""The files of a local network directory, by name.

One directory holds a whole local network (`soma genesis` writes it, `soma start` runs
it, `soma client` uses it). This module only names its entries and finds the directory;
it imports nothing heavy, because every `soma client` command starts by reading it.

    genesis.blob            the genesis transaction (BCS)
    validator-<i>.yaml      one config per validator, keys and store under validator-<i>/
    fullnode.yaml           a fullnode serving the public HTTP API, files under fullnode/
    client.yaml             the client's config: API URL, keystore, active address
    keystore.yaml           the funded accounts' keys (base64)
    faucet.key              the faucet's account, funded at genesis
    ports.yaml              the addresses soma chose (not set by hand), by config file
    logs/                   the nodes' logs
    client-locks/           `soma client`'s locks (one command per sender at a time)
    soma.lock               held while a process runs or writes the network

Knowing every entry lets a destructive command (a regenesis) check that a directory
holds a network and nothing else before it deletes anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

GENESIS_FILE = "genesis.blob"
CLIENT_CONFIG = "client.yaml"
KEYSTORE = "keystore.yaml"
FULLNODE_CONFIG = "fullnode.yaml"
FULLNODE_DIR = "fullnode"
#: The faucet's account: funded at genesis.
FAUCET_KEY = "faucet.key"
LOGS_DIR = "logs"
CLIENT_LOCKS_DIR = "client-locks"
LOCK_FILE = "soma.lock"
PORTS_FILE = "ports.yaml"
#: Where `soma genesis` writes a new network before moving it into place.
STAGING_DIR = ".genesis-staging"
#: The environment variable that names the network directory.
DIR_ENV = "SOMA_DIR"

_FILES = {
    GENESIS_FILE,
    CLIENT_CONFIG,
    KEYSTORE,
    FULLNODE_CONFIG,
    FAUCET_KEY,
    LOCK_FILE,
    PORTS_FILE,
}
_DIRS = {FULLNODE_DIR, LOGS_DIR, STAGING_DIR, CLIENT_LOCKS_DIR}
_VALIDATOR_FILE = re.compile(r"validator-(0|[1-9][0-9]{0,2})\.yaml")
_VALIDATOR_DIR = re.compile(r"validator-(0|[1-9][0-9]{0,2})")
#: What an interrupted atomic write of a YAML file leaves (`dump_yaml`'s temporary).
_LEFTOVER_TEMPORARY = re.compile(r"\.[A-Za-z0-9_.-]+\.yaml\.[0-9]+\.tmp")


def validator_config_name(index: int) -> str:
    return f"validator-{index}.yaml"


def validator_dir_name(index: int) -> str:
    return f"validator-{index}"


def default_directory() -> Path:
    """`SOMA_DIR` if set, else ~/.soma/network."""
    configured = os.environ.get(DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".soma" / "network"


def resolve_directory(directory: Path | None) -> Path:
    """The network directory a command works on: `--dir`, else the default."""
    return (directory or default_directory()).expanduser()


def count_validators(root: Path) -> int:
    count = 0
    while (root / validator_config_name(count)).exists():
        count += 1
    return count


def is_network_entry(entry: Path) -> bool:
    """Whether a directory entry is one a network's layout names (by name and kind)."""
    name = entry.name
    if entry.is_symlink():
        return False
    if entry.is_dir():
        return name in _DIRS or _VALIDATOR_DIR.fullmatch(name) is not None
    return (
        name in _FILES
        or _VALIDATOR_FILE.fullmatch(name) is not None
        or _LEFTOVER_TEMPORARY.fullmatch(name) is not None
    )


def foreign_entries(root: Path) -> list[str]:
    """Entries of `root` that are not part of a network, sorted (empty if none)."""
    if not root.is_dir():
        return []
    return sorted(e.name for e in root.iterdir() if not is_network_entry(e))
