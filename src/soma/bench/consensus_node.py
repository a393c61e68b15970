"""One validator process of `soma bench consensus`: a ConsensusAuthority on a RocksDB
store plus the load port. Started by the driver as `python -m soma.bench.consensus_node
CONFIG.json`; prints `READY` when both servers listen, and stops on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
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


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    committee_hex: str
    index: int
    protocol_key: str
    network_key: str
    store_path: str
    load_address: str
    parameters: dict[str, Any]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        return cls(**json.loads(path.read_text()))


async def run(config: NodeConfig) -> None:
    committee = Committee.from_bytes(bytes.fromhex(config.committee_hex))
    authority_config = AuthorityConfig(
        committee=committee,
        own_index=config.index,
        protocol_key=ProtocolKeyPair.from_base64(config.protocol_key),
        network_key=NetworkKeyPair.from_base64(config.network_key),
        parameters=ConsensusParameters(**config.parameters),
    )
    store = ConsensusStore.open_rocksdb(config.store_path)

    async def consume(subdag: CommittedSubDag) -> None:
        return None

    authority = ConsensusAuthority(authority_config, store, consume)
    await authority.start()
    load = LoadServer(authority)
    load.bind(config.load_address)
    await load.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await load.stop()
    await authority.stop()
    store.close()


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(run(NodeConfig.load(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
