"""Opening a node's stores, the same for validators and fullnodes: the perpetual
authority store (initialised from genesis on first use) and the current epoch's store,
at the places in `db_path` every node uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.state import initialize_genesis, read_system_state
from soma.authority.store import AuthorityStore
from soma.node.local_network import read_genesis
from soma.types.committee import Committee
from soma.types.config import ConfigError, NodeConfig
from soma.types.error import SomaError


def open_authority_store(config: NodeConfig) -> AuthorityStore:
    """The perpetual store, with genesis executed into it if it is new."""
    try:
        genesis = read_genesis(config.genesis_path)
    except (OSError, SomaError) as e:
        raise ConfigError(config.path, "genesis", f"unreadable genesis: {e}") from None
    db = Path(config.db_path)
    db.mkdir(parents=True, exist_ok=True)
    store = AuthorityStore.open_rocksdb(db / "authority")
    initialize_genesis(store, genesis)
    return store


def open_epoch_store(config: NodeConfig, store: AuthorityStore) -> AuthorityPerEpochStore:
    """The store of the epoch the perpetual store's system state is in."""
    system_state = read_system_state(store)
    committee = system_state.committee()
    return AuthorityPerEpochStore.open_rocksdb(
        Path(config.db_path) / f"epoch-{committee.epoch}", committee, system_state
    )


def committee_of_epoch(committee: Committee) -> Callable[[int], Committee]:
    """State sync's `committee_of` while only one committee is known (its epoch's)."""

    def committee_of(epoch: int) -> Committee:
        if epoch != committee.epoch:
            raise SomaError(f"no committee known for epoch {epoch}")
        return committee

    return committee_of
