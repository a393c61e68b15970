"""The commit summaries a node keeps, in its perpetual store (they outlive epochs).

Three tables, by global commit index:

- `commit_summaries`: the node's own summary of each commit it executed (index 0 is the
  genesis summary), written in one batch with the state accumulator after the commit;
- `commit_contents`: the commit's transaction digests in execution order (the
  transactions themselves are in the `transactions` table), which is what state sync
  serves as the commit's contents;
- `certified_summaries`: summaries certified by 2f+1 stake, however they were learned
  (formed from signatures ordered by consensus, or fetched by state sync).
"""

from __future__ import annotations

from soma.storage import U64_BE, Database, StructCodec, TableSpec, WriteBatch
from soma.types.bcs import BcsStruct
from soma.types.commit_summary import CertifiedCommitSummary, CommitSummary
from soma.types.digests import TransactionDigest


class ContentsDigests(BcsStruct):
    """A commit's transaction digests, in execution order."""

    digests: tuple[TransactionDigest, ...]


COMMIT_SUMMARIES = TableSpec("commit_summaries", U64_BE, StructCodec(CommitSummary))
COMMIT_CONTENTS = TableSpec("commit_contents", U64_BE, StructCodec(ContentsDigests))
CERTIFIED_SUMMARIES = TableSpec("certified_summaries", U64_BE, StructCodec(CertifiedCommitSummary))
TABLES = (COMMIT_SUMMARIES, COMMIT_CONTENTS, CERTIFIED_SUMMARIES)


class SummaryStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.own = db.table(COMMIT_SUMMARIES)
        self.contents = db.table(COMMIT_CONTENTS)
        self.certified = db.table(CERTIFIED_SUMMARIES)

    # --- reads ---------------------------------------------------------------------------

    def summary(self, index: int) -> CommitSummary | None:
        return self.own.get(index)

    def last_summary(self) -> CommitSummary | None:
        last = self.own.last()
        return None if last is None else last[1]

    def contents_digests(self, index: int) -> tuple[TransactionDigest, ...] | None:
        found = self.contents.get(index)
        return None if found is None else found.digests

    def certified_summary(self, index: int) -> CertifiedCommitSummary | None:
        return self.certified.get(index)

    def last_certified(self) -> CertifiedCommitSummary | None:
        last = self.certified.last()
        return None if last is None else last[1]

    def certified_range(self, start: int, count: int) -> list[CertifiedCommitSummary]:
        """Certified summaries from `start`, consecutive, at most `count`: stops at the
        first index not held."""
        out: list[CertifiedCommitSummary] = []
        for index, certified in self.certified.items(start, start + count):
            if index != start + len(out):
                break
            out.append(certified)
        return out

    # --- writes --------------------------------------------------------------------------

    def add_summary(
        self, batch: WriteBatch, summary: CommitSummary, digests: tuple[TransactionDigest, ...]
    ) -> None:
        """Put the node's own summary of a commit and the commit's contents in `batch`."""
        batch.put(self.own, summary.index, summary)
        batch.put(self.contents, summary.index, ContentsDigests(digests))

    def put_certified(self, certified: CertifiedCommitSummary, *, sync: bool) -> None:
        self.certified.put(certified.data.index, certified, sync=sync)
