"""What a node recorded of the commits it executed, for readers of the chain's history.

Every node (validator or fullnode) keeps, per executed commit, its own summary (epoch,
global index, consensus timestamp, ...) and the commit's transaction digests in
execution order (`summary_store`); a validator also holds the epoch's consensus commits
(leader and blocks) until it prunes them. A `CommitRecord` puts these together: the
validator service answers `GetCommits` with them and a fullnode's API reads them from
its own store the same way, so both give the same record of a commit.

The transactions of a commit are counted twice: all it executed, and those users sent.
Each commit starts with its ConsensusCommitPrologue, the genesis commit holds only the
genesis transaction, and the epoch's last commit (the one whose summary carries
`end_of_epoch`) ends with the epoch change; those are the system transactions.
"""

from __future__ import annotations

from collections.abc import Callable

from soma.authority import service_wire as wire
from soma.authority.state import AuthorityState
from soma.types.commit_summary import CommitSummary
from soma.types.consensus.commit import Commit
from soma.types.error import SomaError

#: The consensus commit of a global index, where held (None otherwise).
ConsensusCommits = Callable[[int], Commit | None]


class CommitRangeError(SomaError):
    """A GetCommits request outside the bounds."""

    code = "INVALID_COMMIT_RANGE"


def user_transaction_count(summary: CommitSummary, transactions: int) -> int:
    """The transactions users sent among the `transactions` of `summary`'s commit."""
    system = 1 + (1 if summary.end_of_epoch is not None else 0)
    return max(0, transactions - system)


def check_range(count: int, detail: bool) -> None:
    """Refuse a count outside 1..`MAX_COMMITS` (`MAX_DETAILED_COMMITS` with detail)."""
    most = wire.MAX_DETAILED_COMMITS if detail else wire.MAX_COMMITS
    if not 1 <= count <= most:
        raise CommitRangeError(f"count must be 1..{most}{' with detail' if detail else ''}")


def commit_records(
    state: AuthorityState,
    start: int,
    count: int,
    detail: bool,
    consensus: ConsensusCommits | None = None,
) -> list[wire.CommitRecord]:
    """The records of the executed commits from `start`, consecutive (stopping at the
    first not executed here), at most `count` (checked by `check_range`). With
    `detail`, each carries its transaction digests and, from `consensus`, its
    consensus commit when it is held and is the one the summary names."""
    check_range(count, detail)
    summaries = state.store.summaries
    out: list[wire.CommitRecord] = []
    for index in range(start, start + count):
        summary = summaries.summary(index)
        digests = summaries.contents_digests(index)
        if summary is None or digests is None:
            break
        commit = None
        if detail and consensus is not None:
            commit = consensus(index)
            if commit is not None and commit.digest() != summary.commit_digest:
                commit = None
        out.append(
            wire.CommitRecord(
                index=index,
                epoch=summary.epoch,
                timestamp_ms=summary.timestamp_ms,
                transactions=len(digests),
                user_transactions=user_transaction_count(summary, len(digests)),
                digests=digests if detail else (),
                commit=commit,
            )
        )
    return out
