"""The API's read endpoints behind the explorer (and anyone else watching the chain).

- `GET /dag`: one validator's last DAG rounds, blocks with their parents, and its
  leader decisions (committed directly or indirectly, skipped, undecided).
- `GET /commits`, `GET /commits/{index}`: the latest commits (timestamp, transaction
  counts, leader where a validator still holds the consensus commit), and one commit
  with its transactions, leader, blocks and the signers of its certified summary.
- `GET /throughput`: user transactions per second over the last minutes, from the
  commits' consensus timestamps (`soma.orchestrator.throughput`).
- `GET /transactions/{digest}/details`: a transaction with its inputs, status, fee,
  effects, and the validators whose signatures over those effects verify, as an
  effects certificate once they hold a quorum of stake (asked of the validators at
  each call: a fullnode keeps no certificate for transactions it did not submit).
- `GET /search?q=`: what a digest, commit index, object ID or address names here.

Like every route, these read through the `ChainReader` only, so the API answers the
same whichever node serves it; what only the validators know comes from them through
the reader (`soma.orchestrator.validator_reads`), and a network that cannot answer is a
503.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Annotated, Any

from fastapi import FastAPI, Query

from soma.authority import service_wire as wire
from soma.orchestrator.chain_reader import ChainReader
from soma.orchestrator.throughput import Throughput
from soma.orchestrator.validator_reads import RecentDag
from soma.rpc import api_models as m
from soma.rpc.json_form import effects_json, to_json
from soma.rpc.openapi_errors import error_responses as errors
from soma.rpc.parsing import ApiError, parse_digest
from soma.types.base import ObjectID, SomaAddress
from soma.types.commit_summary import CertifiedCommitSummary
from soma.types.consensus.block import BlockRef
from soma.types.error import SomaError

_STATUS = {
    wire.LeaderState.COMMITTED: "committed",
    wire.LeaderState.SKIPPED: "skipped",
    wire.LeaderState.UNDECIDED: "undecided",
}
_DECIDED = {
    wire.DecidedBy.DIRECT: "direct",
    wire.DecidedBy.INDIRECT: "indirect",
    wire.DecidedBy.CERTIFIED: "certified",
    wire.DecidedBy.RESTORED: "restored",
}
#: The largest commit index a search takes as one (a u64).
_MAX_INDEX = 2**64 - 1

RoundsQuery = Annotated[
    int,
    Query(ge=1, le=m.MAX_DAG_ROUNDS, description="How many of the last rounds (default 20)."),
]
CommitLimitQuery = Annotated[
    int,
    Query(ge=1, le=m.MAX_COMMIT_PAGE, description="Commits in the page (default 10)."),
]
EndQuery = Annotated[
    int | None,
    Query(ge=0, le=_MAX_INDEX, description="The newest commit listed (default: the latest)."),
]
WindowQuery = Annotated[
    int, Query(ge=10, le=900, description="The window, in seconds (default 300).")
]
BucketQuery = Annotated[int, Query(ge=5, le=60, description="Seconds per bucket (default 10).")]
SearchQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=128,
        description="A transaction digest, a commit index, an object ID or an address.",
    ),
]


def block_ref_json(ref: BlockRef) -> dict[str, Any]:
    return {"round": ref.round, "author": ref.author, "digest": str(ref.digest)}


def recent_dag_json(found: RecentDag) -> dict[str, Any]:
    dag = found.dag
    return {
        "validator": found.validator,
        "epoch": dag.epoch,
        "highest_round": dag.highest_round,
        "low_round": dag.low_round,
        "authorities": [
            {"index": i, "name": str(a.name), "hostname": a.hostname, "stake": a.stake}
            for i, a in enumerate(dag.authorities)
        ],
        "blocks": [
            {
                **block_ref_json(b.reference),
                "ancestors": [block_ref_json(a) for a in b.ancestors],
                "transactions": b.transactions,
                "timestamp_ms": b.timestamp_ms,
            }
            for b in dag.blocks
        ],
        "leaders": [
            {
                "round": leader.round,
                "authority": leader.authority,
                "status": _STATUS[leader.state],
                "decided": None if leader.decided_by is None else _DECIDED[leader.decided_by],
                "block": None if leader.block is None else block_ref_json(leader.block),
                "commit": leader.commit_index,
            }
            for leader in dag.leaders
        ],
    }


def commit_item_json(record: wire.CommitRecord) -> dict[str, Any]:
    return {
        "index": record.index,
        "epoch": record.epoch,
        "timestamp_ms": record.timestamp_ms,
        "transactions": record.transactions,
        "user_transactions": record.user_transactions,
        "leader": None if record.commit is None else block_ref_json(record.commit.leader),
    }


def signer_names(reader: ChainReader, certified: CertifiedCommitSummary) -> list[str]:
    """Who signed a certified summary: its signer indices are positions in the committee
    of the summary's epoch (not the current one, which may have other members)."""
    committee = reader.committee_of(certified.data.epoch)
    if committee is None:
        return []  # an epoch this reader never knew: its members cannot be named
    indices = certified.auth_signature.signer_indices()
    return [str(committee.members[i].name) for i in indices if i < committee.size]


def add_explorer_routes(app: FastAPI, reader: ChainReader) -> None:
    """The routes above, reading through `reader`."""
    throughput = Throughput(reader)

    @app.get("/dag", response_model=m.RecentDag, responses=errors(400, 503))
    async def recent_dag(rounds: RoundsQuery = 20) -> dict[str, Any]:
        """The last rounds of the DAG as one validator holds them: every block with
        its parents, and the leader slots of those rounds with the commit rule's
        decision (asked of the validators in turn: one that runs no consensus is passed
        over)."""
        return recent_dag_json(await reader.recent_dag(rounds))

    @app.get("/commits", response_model=m.CommitList, responses=errors(400, 503))
    async def commits(limit: CommitLimitQuery = 10, end: EndQuery = None) -> dict[str, Any]:
        """The latest executed commits, newest first (from `end` down, if given), with
        their leaders where a validator still holds the consensus commit."""
        latest = (await reader.status()).latest_commit
        top = latest if end is None else min(end, latest)
        first = max(0, top - limit + 1)
        records = await reader.commits(first, top - first + 1, True)
        return {"commits": [commit_item_json(r) for r in reversed(records)]}

    @app.get("/commits/{index}", response_model=m.CommitView, responses=errors(400, 404, 503))
    async def commit(index: m.IndexPath) -> dict[str, Any]:
        """An executed commit: its transactions in execution order, its leader and
        blocks (while a validator still holds its consensus commit: validators prune
        old ones, and fullnodes keep only the certified chain) and the validators that
        signed its certified summary."""
        records = await reader.commits(index, 1, True)
        if not records:
            raise ApiError(404, "COMMIT_NOT_FOUND", f"commit {index} is not executed here")
        record = records[0]
        certified = await reader.certified_summary(index)
        consensus = record.commit
        return {
            "index": record.index,
            "epoch": record.epoch,
            "timestamp_ms": record.timestamp_ms,
            "transactions": [str(d) for d in record.digests],
            "user_transactions": record.user_transactions,
            "leader": None if consensus is None else block_ref_json(consensus.leader),
            "blocks": None if consensus is None else [block_ref_json(b) for b in consensus.blocks],
            "certified": certified is not None,
            "signers": [] if certified is None else signer_names(reader, certified),
        }

    @app.get("/throughput", response_model=m.Throughput, responses=errors(400, 503))
    async def chain_throughput(
        window_s: WindowQuery = 300, bucket_s: BucketQuery = 10
    ) -> dict[str, Any]:
        """User transactions per second over the last `window_s` seconds, in buckets,
        by the commits' consensus timestamps (a bucket longer than the window is the
        window: one bucket)."""
        bucket_s = min(bucket_s, window_s)
        latest = (await reader.status()).latest_commit
        now_ms = int(time.time() * 1000)
        series = await throughput.series(latest, now_ms, window_s * 1000, bucket_s * 1000)
        window = len(series.buckets) * series.bucket_ms
        return {
            "end_ms": series.end_ms,
            "bucket_ms": series.bucket_ms,
            "transactions": series.transactions,
            "tps": series.transactions * 1000 / window,
            "buckets": [
                {
                    "start_ms": b.start_ms,
                    "transactions": b.transactions,
                    "commits": b.commits,
                    "tps": b.transactions * 1000 / series.bucket_ms,
                }
                for b in series.buckets
            ],
        }

    @app.get(
        "/transactions/{digest}/details",
        response_model=m.TransactionDetails,
        responses=errors(400, 404, 503),
    )
    async def transaction_details(digest: m.DigestPath) -> dict[str, Any]:
        """A transaction with its inputs, status, fee and effects, and the validators
        whose signatures over those effects verify (asked of every validator now; they
        form an effects certificate once they hold a quorum of stake)."""
        d = parse_digest(digest)
        found = None if d is None else await reader.transaction(d)
        if d is None or found is None:
            raise ApiError(404, "TRANSACTION_NOT_FOUND", f"transaction {digest} is not known")
        tx, effects = found
        data = tx.data
        out: dict[str, Any] = {
            "digest": str(d),
            "sender": str(data.sender),
            "transaction": to_json(data),
            "inputs": [to_json(i) for i in data.input_objects()],
            "status": "pending",
            "fee": None,
            "effects": None,
            "signers": [],
            "signed_stake": 0,
            "total_stake": reader.committee.total_stake,
            "certificate": None,
        }
        if effects is None:
            return out
        signatures = await reader.effects_signatures(d, effects)
        certificate = signatures.certificate
        out.update(
            status="success" if effects.status.is_success() else "failure",
            fee=effects.gas_used,
            effects=effects_json(effects),
            signers=[str(name) for name in signatures.signers],
            signed_stake=signatures.signed_stake,
            total_stake=signatures.committee.total_stake,
            certificate=None
            if certificate is None
            else base64.b64encode(certificate.to_bytes()).decode("ascii"),
        )
        return out

    @app.get("/search", response_model=m.SearchResult, responses=errors(400, 503))
    async def search(q: SearchQuery) -> dict[str, Any]:
        """What `q` names on this node: a transaction (by digest), an executed commit
        (by index), a live object (by ID) or an address (any 64 hex digits), most
        specific first; no match is an empty list, not an error."""
        text = q.strip()
        matches: list[dict[str, str]] = []
        if re.fullmatch(m.DIGEST_PATTERN, text):
            digest = parse_digest(text)
            if digest is not None and await reader.transaction(digest) is not None:
                matches.append({"kind": "transaction", "id": str(digest)})
        if re.fullmatch(r"[0-9]{1,20}", text) and int(text) <= _MAX_INDEX:
            latest = (await reader.status()).latest_commit
            if int(text) <= latest:
                matches.append({"kind": "commit", "id": str(int(text))})
        if re.fullmatch(m.OBJECT_ID_PATTERN, text):
            object_id = _object_id_or_none(text)
            if object_id is not None and await reader.get_object(object_id) is not None:
                matches.append({"kind": "object", "id": str(object_id)})
        if re.fullmatch(m.ADDRESS_PATTERN, text):
            matches.append({"kind": "address", "id": str(SomaAddress.from_hex(text))})
        return {"query": q, "matches": matches}


def _object_id_or_none(text: str) -> ObjectID | None:
    try:
        return ObjectID.from_hex(text)
    except SomaError:
        return None
