"""One validator process of `soma bench consensus`: a ConsensusAuthority on a RocksDB
store plus the load port. Started by the driver as `python -m soma.bench.consensus_node
CONFIG.json`; prints `READY` when both servers listen, and stops on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from soma.bench.load_service import LoadServer
from soma.consensus.authority import AuthorityConfig, ConsensusAuthority
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.types.committee import Committee
from soma.types.consensus.commit import CommittedSubDag
from soma.types.crypto import NetworkKeyPair, ProtocolKeyPair
from soma.utils.allocator import tune_allocator
from soma.utils.gc_tuning import tune_gc


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    committee_hex: str
    index: int
    protocol_key: str
    network_key: str
    store_path: str
    load_address: str
    parameters: dict[str, Any]
    #: Dial these peers here instead of at their committee address (JSON keys are text).
    peer_addresses: dict[str, str] = dataclasses.field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        return cls(**json.loads(path.read_text()))


async def run(config: NodeConfig) -> int:
    """Serve until SIGTERM or SIGINT (exit status 0) or a fatal consensus error (1)."""
    committee = Committee.from_bytes(bytes.fromhex(config.committee_hex))
    authority_config = AuthorityConfig(
        committee=committee,
        own_index=config.index,
        protocol_key=ProtocolKeyPair.from_base64(config.protocol_key),
        network_key=NetworkKeyPair.from_base64(config.network_key),
        parameters=ConsensusParameters(**config.parameters),
        peer_addresses={int(k): v for k, v in config.peer_addresses.items()},
    )
    store = ConsensusStore.open_rocksdb(config.store_path)

    async def consume(subdag: CommittedSubDag) -> None:
        return None

    stop = asyncio.Event()
    authority = ConsensusAuthority(
        authority_config, store, consume, on_fatal=lambda _error: stop.set()
    )
    await authority.start()
    load = LoadServer(authority)
    load.bind(config.load_address)
    await load.start()
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await load.stop()
    await authority.stop()
    store.close()
    return 0 if authority.failure is None else 1


def main() -> None:
    tune_allocator()
    tune_gc()
    logging.basicConfig(
        level=os.environ.get("SOMA_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    sys.exit(asyncio.run(run(NodeConfig.load(Path(sys.argv[1])))))


if __name__ == "__main__":
    main()
