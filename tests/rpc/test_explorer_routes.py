"""The explorer's API routes and page, in process over a fake reader: the recent DAG,
commit pages and lists, throughput buckets, transaction details with signers, search;
every answer checked against its OpenAPI model (a wrong shape is a 500 here), bad
input answered 400 with a code; and the page and its assets served with a policy that
allows nothing from elsewhere."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from soma.authority import service_wire as wire
from soma.consensus.local_committee import build_committee
from soma.orchestrator.chain_reader import ChainReader, NodeStatus
from soma.orchestrator.validator_reads import EffectsSignatures, RecentDag
from soma.rpc.app import create_app
from soma.rpc.explorer_page import ASSETS
from soma.rpc.limits import ApiLimits
from soma.types.base import ObjectID, SomaAddress
from soma.types.committee import Committee
from soma.types.consensus.block import BlockRef
from soma.types.consensus.commit import Commit
from soma.types.crypto import AccountKeyPair
from soma.types.digests import BlockDigest, CommitDigest, ObjectDigest, TransactionDigest
from soma.types.effects import ExecutionSuccess, TransactionEffects
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.object import ObjectRef
from soma.types.system_state import SystemState, ValidatorSet
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin

COMMITTEE, _ = build_committee(4, seed=3)
LATEST = 30
KNOWN_OBJECT = ObjectID.from_hex("0x5")


def _ref(round: int, author: int) -> BlockRef:
    return BlockRef(round, author, BlockDigest(bytes([round, author]) + bytes(30)))


def _record(index: int, detail: bool, now_ms: int) -> wire.CommitRecord:
    leader = _ref(index + 1, index % 4)
    return wire.CommitRecord(
        index=index,
        epoch=0,
        timestamp_ms=now_ms - (LATEST - index) * 1000,
        transactions=4,
        user_transactions=3,
        digests=(TransactionDigest(bytes([index]) + bytes(31)),) if detail else (),
        commit=Commit(index, CommitDigest.zero(), 0, leader, (_ref(index, 0), leader))
        if detail and index % 2 == 0
        else None,
    )


def _transaction() -> SignedTransaction:
    key = AccountKeyPair.generate()
    sender = key.public_key.to_address()
    coin = ObjectRef(ObjectID(bytes(31) + b"\x07"), 1, ObjectDigest(bytes(32)))
    data = TransactionData(
        TransferCoin(coin, 10, SomaAddress(bytes(32))), sender, coin, 10_000, None
    )
    return SignedTransaction.sign(data, key)


class Reader:
    """What the explorer's routes read."""

    def __init__(self) -> None:
        self.tx = _transaction()
        self.effects: TransactionEffects | None = None
        self.commit_calls: list[tuple[int, int, bool]] = []
        #: The latest commit's timestamp: now, as the test starts.
        self.now_ms = int(time.time() * 1000)

    @property
    def committee(self) -> Committee:
        return COMMITTEE

    async def status(self) -> NodeStatus:
        state = SystemState(0, 1, ValidatorSet((), (), ()), DEFAULT_PARAMETERS, 0)
        return NodeStatus(0, LATEST, LATEST, LATEST, bytes(32), LATEST, None, state)

    async def commits(self, start: int, count: int, detail: bool) -> list[wire.CommitRecord]:
        self.commit_calls.append((start, count, detail))
        top = min(start + count - 1, LATEST)
        return [_record(i, detail, self.now_ms) for i in range(start, top + 1)]

    async def certified_summary(self, index: int | None) -> None:
        return None

    async def recent_dag(self, rounds: int) -> RecentDag:
        blocks = tuple(
            wire.DagBlock(_ref(r, a), (_ref(r - 1, 0), _ref(r - 1, 1)), a, 5)
            for r in range(10, 13)
            for a in range(4)
        )
        leaders = (
            wire.DagLeader(
                10, 1, wire.LeaderState.COMMITTED, wire.DecidedBy.DIRECT, _ref(10, 1), 7
            ),
            wire.DagLeader(11, 2, wire.LeaderState.SKIPPED, wire.DecidedBy.INDIRECT, None, None),
            wire.DagLeader(12, 3, wire.LeaderState.UNDECIDED, None, None, None),
        )
        authorities = tuple(wire.DagAuthority(m.name, m.hostname, m.stake) for m in COMMITTEE)
        dag = wire.GetRecentDagResponse(0, authorities, 12, 10, blocks, leaders)
        return RecentDag(dag, "validator-1")

    async def transaction(
        self, digest: TransactionDigest
    ) -> tuple[SignedTransaction, TransactionEffects | None] | None:
        return (self.tx, self.effects) if digest == self.tx.digest() else None

    async def effects_signatures(
        self, digest: TransactionDigest, effects: TransactionEffects
    ) -> EffectsSignatures:
        return EffectsSignatures(COMMITTEE, COMMITTEE.names()[:2], None)

    async def get_object(self, object_id: ObjectID) -> object | None:
        return object() if object_id == KNOWN_OBJECT else None


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Reader]]:
    reader = Reader()
    app = create_app(cast(ChainReader, reader), limits=ApiLimits(rate_per_s=None))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, reader


async def _get(client: httpx.AsyncClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status_code == status, response.text
    return response.json()


async def test_the_recent_dag(api: tuple[httpx.AsyncClient, Reader]) -> None:
    client, _ = api
    dag = await _get(client, "/dag?rounds=3")
    assert dag["validator"] == "validator-1"
    assert (dag["low_round"], dag["highest_round"]) == (10, 12)
    assert [a["index"] for a in dag["authorities"]] == [0, 1, 2, 3]
    assert {b["author"] for b in dag["blocks"]} == {0, 1, 2, 3}
    assert len(dag["blocks"][0]["ancestors"]) == 2
    assert [(x["status"], x["decided"]) for x in dag["leaders"]] == [
        ("committed", "direct"),
        ("skipped", "indirect"),
        ("undecided", None),
    ]
    assert dag["leaders"][0]["commit"] == 7 and dag["leaders"][0]["block"]["author"] == 1
    for bad in ("0", "51", "x"):
        error = await _get(client, f"/dag?rounds={bad}", 400)
        assert set(error) == {"code", "message"}


async def test_commit_lists_and_pages(api: tuple[httpx.AsyncClient, Reader]) -> None:
    client, reader = api
    listed = (await _get(client, "/commits?limit=5"))["commits"]
    assert [c["index"] for c in listed] == [30, 29, 28, 27, 26]
    assert listed[0]["leader"] == {"round": 31, "author": 2, "digest": str(_ref(31, 2).digest)}
    assert listed[1]["leader"] is None  # no validator holds its consensus commit
    assert reader.commit_calls[-1] == (26, 5, True)
    older = (await _get(client, "/commits?limit=3&end=2"))["commits"]
    assert [c["index"] for c in older] == [2, 1, 0]
    commit = await _get(client, "/commits/4")
    assert commit["leader"]["round"] == 5 and len(commit["blocks"]) == 2
    assert commit["transactions"] == [str(TransactionDigest(bytes([4]) + bytes(31)))]
    assert commit["certified"] is False and commit["signers"] == []
    assert (await _get(client, "/commits/5"))["blocks"] is None
    missing = await _get(client, "/commits/31", 404)
    assert missing["code"] == "COMMIT_NOT_FOUND"
    assert (await _get(client, "/commits/x", 400))["code"]
    assert (await _get(client, "/commits?limit=51", 400))["code"]


async def test_throughput_counts_user_transactions_per_bucket(
    api: tuple[httpx.AsyncClient, Reader],
) -> None:
    client, reader = api
    series = await _get(client, "/throughput?window_s=60&bucket_s=10")
    assert series["bucket_ms"] == 10_000 and len(series["buckets"]) == 6
    # Commits 1..30, one a second up to now: the last 30 s hold 3 user transactions each.
    assert series["transactions"] == 3 * 30
    assert sum(b["commits"] for b in series["buckets"]) == 30
    assert series["buckets"][-1]["tps"] == pytest.approx(3.0, abs=0.31)
    calls = len(reader.commit_calls)
    await _get(client, "/throughput?window_s=60&bucket_s=10")
    assert len(reader.commit_calls) == calls  # all cached: nothing new was executed
    for bad in ("window_s=5", "window_s=901", "bucket_s=4", "bucket_s=61"):
        await _get(client, f"/throughput?{bad}", 400)
    # A bucket longer than the window is the window itself.
    one = await _get(client, "/throughput?window_s=10&bucket_s=60")
    assert one["bucket_ms"] == 10_000 and len(one["buckets"]) == 1


async def test_transaction_details(api: tuple[httpx.AsyncClient, Reader]) -> None:
    client, reader = api
    digest = reader.tx.digest()
    pending = await _get(client, f"/transactions/{digest}/details")
    assert (pending["status"], pending["fee"], pending["effects"]) == ("pending", None, None)
    assert pending["sender"] == str(reader.tx.data.sender)
    assert pending["inputs"][0]["type"] == "ImmOrOwnedInput"
    reader.effects = TransactionEffects(
        status=ExecutionSuccess(),
        executed_epoch=0,
        transaction_digest=digest,
        dependencies=(),
        changed_objects=(),
        gas_object_index=None,
        gas_used=1_000,
        lamport_version=2,
    )
    done = await _get(client, f"/transactions/{digest}/details")
    assert (done["status"], done["fee"]) == ("success", 1_000)
    assert done["effects"]["transaction_digest"] == str(digest)
    assert done["signers"] == [str(n) for n in COMMITTEE.names()[:2]]
    assert (done["signed_stake"], done["total_stake"]) == (
        COMMITTEE.stake_of(0) + COMMITTEE.stake_of(1),
        COMMITTEE.total_stake,
    )
    assert done["certificate"] is None  # two of four: no quorum
    unknown = TransactionDigest(bytes(32))
    assert (await _get(client, f"/transactions/{unknown}/details", 404))["code"] == (
        "TRANSACTION_NOT_FOUND"
    )
    assert (await _get(client, "/transactions/nope/details", 400))["code"] == "INVALID_DIGEST"


async def test_search(api: tuple[httpx.AsyncClient, Reader]) -> None:
    client, reader = api
    digest = str(reader.tx.digest())

    async def kinds(query: str) -> list[tuple[str, str]]:
        response = await client.get("/search", params={"q": query})
        assert response.status_code == 200, response.text
        found = response.json()
        return [(m["kind"], m["id"]) for m in found["matches"]]

    assert await kinds(digest) == [("transaction", digest)]
    assert await kinds(" 12 ") == [("commit", "12")]  # no object 0x12 here
    assert await kinds("0x5") == [("object", str(KNOWN_OBJECT))]
    address = "ab" * 32
    assert await kinds(address) == [("address", "0x" + address)]
    assert await kinds("nothing here") == []
    assert await kinds("99") == []  # past the latest commit, and no such object
    # Digits of other scripts are no commit index (int() would read some, refuse others).
    for other in ("\u00b2", "\u0661\u0662", "\uff11"):
        assert await kinds(other) == []
    assert (await _get(client, "/search", 400))["code"]
    assert (await _get(client, "/search?q=" + "1" * 129, 400))["code"]


async def test_the_page_and_its_assets_allow_nothing_from_elsewhere(
    api: tuple[httpx.AsyncClient, Reader],
) -> None:
    client, _ = api
    page = await client.get("/explorer")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    html = page.text
    assert "http://" not in html and "https://" not in html
    for name, content_type in ASSETS.items():
        assert f"explorer/{name}" in html
        asset = await client.get(f"/explorer/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"] == content_type
        assert "content-security-policy" in asset.headers
        text = asset.text
        assert "https://" not in text and "@import" not in text and "url(" not in text
    missing = await client.get("/explorer/secrets.txt")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_the_new_routes_are_documented_with_their_errors() -> None:
    doc = create_app(reader=object()).openapi()  # type: ignore[arg-type]
    paths = doc["paths"]
    for path in ("/dag", "/commits", "/commits/{index}", "/throughput", "/search"):
        responses = paths[path]["get"]["responses"]
        assert {"200", "400", "503"} <= set(responses), path
    assert "404" in paths["/transactions/{digest}/details"]["get"]["responses"]
    assert "404" in paths["/commits/{index}"]["get"]["responses"]
    assert not [p for p in paths if p.startswith("/explorer")]  # a page, not the API


def test_signers_are_named_by_the_committee_of_the_summarys_epoch() -> None:
    """Signer indices are positions in the committee of the summary's epoch: after a
    committee change, naming them by the current committee would name others (or fail
    on an index past its end)."""
    from types import SimpleNamespace

    from soma.rpc.explorer_api import signer_names

    old, _ = build_committee(4, seed=5)
    current, _ = build_committee(2, seed=6)

    class Committees:
        committee = current

        def committee_of(self, epoch: int) -> Committee | None:
            return {0: old, 1: current}.get(epoch)

    def certified(epoch: int, indices: list[int]) -> Any:
        signature = SimpleNamespace(signer_indices=lambda: indices)
        return SimpleNamespace(data=SimpleNamespace(epoch=epoch), auth_signature=signature)

    reader = cast(ChainReader, Committees())
    names = signer_names(reader, certified(0, [0, 2, 3]))
    assert names == [str(old.members[i].name) for i in (0, 2, 3)]
    assert signer_names(reader, certified(1, [1])) == [str(current.members[1].name)]
    assert signer_names(reader, certified(7, [0])) == []  # an epoch it never knew
