"""docs/formats.md must state the schema the code actually encodes.

Every struct and enum variant reachable from the signed or hashed structures is rendered
from the code (`describe_fields`) and must appear verbatim in the page, so a field added,
removed, renamed or reordered in code fails here until the page says so too.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from soma.authority.epoch_store import CommitTransactions, PendingTransaction
from soma.authority.summary_store import ContentsDigests
from soma.consensus.network import wire
from soma.consensus.network.auth import SignedPeerHandshake
from soma.p2p import wire as p2p_wire
from soma.sync import wire as sync_wire
from soma.types.bcs import BcsEnum, BcsStruct, describe_fields, typevar_bindings
from soma.types.commit_summary import CertifiedCommitSummary, CommitContents
from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock
from soma.types.consensus.commit import Commit, CommitInfo
from soma.types.consensus.transaction import ConsensusTransaction
from soma.types.effects import CertifiedTransactionEffects, SignedTransactionEffects
from soma.types.intent import Intent
from soma.types.object import CoinData, Object
from soma.types.signature_info import EmptySignInfo
from soma.types.system_state import SystemState
from soma.types.transaction import SignedTransaction

DOC = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()

ROOTS: list[type] = [
    SignedTransaction,
    SignedTransactionEffects,
    CertifiedTransactionEffects,
    Object,
    CoinData,
    Committee,
    SystemState,
    Intent,
    EmptySignInfo,
    SignedBlock,
    Commit,
    CommitInfo,
    SignedPeerHandshake,
    wire.SubscribeBlocksRequest,
    wire.BlockBatch,
    wire.FetchBlocksRequest,
    wire.FetchCommitsRequest,
    wire.FetchCommitsResponse,
    wire.FetchLatestBlocksRequest,
    wire.LatestRoundsRequest,
    wire.LatestRoundsResponse,
    ConsensusTransaction,
    PendingTransaction,
    CommitTransactions,
    CertifiedCommitSummary,
    CommitContents,
    ContentsDigests,
    p2p_wire.ExchangePeersRequest,
    p2p_wire.ExchangePeersResponse,
    sync_wire.GetChainInfoRequest,
    sync_wire.ChainInfo,
    sync_wire.GetSummariesRequest,
    sync_wire.GetSummariesResponse,
    sync_wire.GetContentsRequest,
    sync_wire.GetContentsResponse,
]


def _reachable(roots: list[type]) -> list[type]:
    seen: list[type] = []
    todo = list(roots)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        if issubclass(cls, BcsEnum) and cls is cls.__bcs_enum__:
            todo.extend(cls.variants().values())
            continue
        hints = typing.get_type_hints(cls)
        bindings = typevar_bindings(cls)
        for f in dataclasses.fields(cls):
            todo.extend(_struct_types(bindings.get(hints[f.name], hints[f.name])))
    return seen


def _struct_types(tp: object) -> list[type]:
    if isinstance(tp, type):
        return [tp] if issubclass(tp, BcsStruct) else []
    return [t for arg in typing.get_args(tp) for t in _struct_types(arg)]


def _schema_line(cls: type) -> str:
    fields = ", ".join(f"{name}: {wire}" for name, wire in describe_fields(cls))
    body = f"{cls.__name__} {{ {fields} }}" if fields else cls.__name__
    tag = getattr(cls, "__bcs_tag__", None)
    return f"{tag} => {body}" if tag is not None else body


DOCUMENTED = [
    c
    for c in _reachable(ROOTS)
    if not (issubclass(c, BcsEnum) and c is c.__bcs_enum__)  # roots: listed via variants
]


def test_reachable_set_is_substantial() -> None:
    assert len(DOCUMENTED) > 40


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda c: c.__name__)
def test_schema_line_in_formats_doc(cls: type) -> None:
    line = _schema_line(cls)
    assert line in DOC.splitlines(), f"docs/formats.md lacks the line: {line}"


def test_digest_type_tags_documented() -> None:
    for tag in [
        "TransactionData",
        "TransactionEffects",
        "Object",
        "SignedBlock",
        "Commit",
        "CommitSummary",
        "CommitTransactions",
        "CommitEffects",
    ]:
        assert f"| `{tag}` |" in DOC
