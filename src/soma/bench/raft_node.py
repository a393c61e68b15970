"""One node of the Raft baseline for `soma bench consensus --baseline raft`: a pysyncobj
replicated log behind the same load port as a soma validator, so the driver sends both
systems the same batches of transactions.

Each transaction is one Raft log entry, as in a Raft-replicated ledger whose clients send
independent transactions (pysyncobj itself batches entries into its AppendEntries
messages, up to 1 MiB); a batch's answer comes when all its entries are committed and
applied (a follower forwards them to the leader). `--baseline raft-batched` instead
replicates each submitted batch as a single entry, which is what an application would do
if it grouped transactions itself. The log is journalled to a file, as soma's consensus
persists its blocks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
from pysyncobj import SyncObj, SyncObjConf, replicated  # type: ignore[import-untyped]

from soma.bench.load_service import (
    SERVICE,
    StatsResponse,
    SubmitOutcome,
    SubmitRequest,
    SubmitResponse,
)
from soma.consensus.network.server import channel_options
from soma.types.error import SomaError
from soma.utils.allocator import tune_allocator
from soma.utils.gc_tuning import tune_gc


@dataclasses.dataclass(frozen=True)
class RaftNodeConfig:
    address: str
    partners: list[str]
    load_address: str
    journal: str
    #: Replicate a whole submitted batch as one log entry instead of one per transaction.
    batched: bool = False

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, path: Path) -> RaftNodeConfig:
        return cls(**json.loads(path.read_text()))


class ReplicatedLog(SyncObj):  # type: ignore[misc]
    def __init__(self, address: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(address, partners, conf)
        self.applied = 0

    @replicated  # type: ignore[untyped-decorator]
    def append(self, batch: bytes) -> int:
        self.applied += 1
        return len(batch)


async def run(config: RaftNodeConfig) -> None:
    conf = SyncObjConf(
        appendEntriesBatchSizeBytes=2**20,
        sendBufferSize=2**20,
        recvBufferSize=2**20,
        journalFile=config.journal,
        commandsQueueSize=1_000_000,
    )
    log = ReplicatedLog(config.address, config.partners, conf)
    loop = asyncio.get_running_loop()

    async def submit(request: bytes, context: Any) -> bytes:
        try:
            transactions = SubmitRequest.from_bytes(request).transactions
        except SomaError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise AssertionError("unreachable") from e
        done: asyncio.Future[bool] = loop.create_future()
        commands = [request] if config.batched else list(transactions)
        remaining = [len(commands)]
        failed = [False]

        def callback(result: object, error: object) -> None:
            if not (error is None or error == 0):
                failed[0] = True
            remaining[0] -= 1
            if remaining[0] == 0:
                loop.call_soon_threadsafe(_settle, done, not failed[0])

        for command in commands:
            log.append(command, callback=callback)
        ok = await done
        outcome = SubmitOutcome.COMMITTED if ok else SubmitOutcome.FAILED
        return SubmitResponse(int(outcome), log.applied).to_bytes()

    async def stats(request: bytes, context: Any) -> bytes:
        return StatsResponse(0, log.applied).to_bytes()

    server = grpc.aio.server(options=channel_options())
    methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Submit": grpc.unary_unary_rpc_method_handler(submit),
        "Stats": grpc.unary_unary_rpc_method_handler(stats),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    server.add_insecure_port(config.load_address)
    await server.start()
    # Ready once a leader is elected.
    while log._getLeader() is None:
        await asyncio.sleep(0.05)
    print("READY", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.2)
    log.destroy()


def _settle(future: asyncio.Future[bool], ok: bool) -> None:
    if not future.done():
        future.set_result(ok)


def main() -> None:
    # As the validators do, so both systems run on the same allocator and collector.
    tune_allocator()
    tune_gc()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(RaftNodeConfig.load(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
