"""Opening a node's stores, the same for validators and fullnodes: the perpetual
authority store (initialised from genesis on first use) and the current epoch's store,
at the places in `db_path` every node uses."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.state import initialize_genesis
from soma.authority.store import AuthorityStore
from soma.node.local_network import read_genesis
from soma.types.committee import Committee
from soma.types.config import ConfigError, NodeConfig
from soma.types.epoch_start import EpochStart
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


#: Past epochs whose stores a node keeps (for inspection: nothing reads them again).
KEPT_EPOCHS = 2


def epoch_store_path(config: NodeConfig, epoch: int) -> Path:
    return Path(config.db_path) / f"epoch-{epoch}"


def consensus_store_path(config: NodeConfig, epoch: int) -> Path:
    return Path(config.db_path) / f"consensus-{epoch}"


def open_epoch_store(config: NodeConfig, store: AuthorityStore) -> AuthorityPerEpochStore:
    """The store of the epoch the node last entered (its committee and parameters as the
    epoch change left them, not the live system state, which moves on within it)."""
    start = store.current_epoch_start()
    if start is None:
        raise SomaError("the store records no epoch: run genesis first")
    return AuthorityPerEpochStore.open_rocksdb(
        epoch_store_path(config, start.epoch),
        start.committee(),
        start.system_state,
        start.commit_offset,
    )


def enter_next_epoch(config: NodeConfig, store: AuthorityStore, start: EpochStart) -> None:
    """Record that the node enters `start.epoch` (synced: a restart resumes there), and
    drop the stores of epochs more than `KEPT_EPOCHS` back (nothing reads them again: a
    peer that needs that history syncs it from certified summaries)."""
    store.put_epoch_start(start)
    for epoch in range(max(0, start.epoch - KEPT_EPOCHS - 2), start.epoch - KEPT_EPOCHS):
        for path in (epoch_store_path(config, epoch), consensus_store_path(config, epoch)):
            shutil.rmtree(path, ignore_errors=True)


def committees_of(store: AuthorityStore) -> Callable[[int], Committee]:
    """State sync's `committee_of`: the committees of the epochs this node entered (the
    chain verifier learns the next one from each certified end-of-epoch summary)."""

    def committee_of(epoch: int) -> Committee:
        start = store.epoch_start(epoch)
        if start is None:
            raise SomaError(f"no committee known for epoch {epoch}")
        return start.committee()

    return committee_of
