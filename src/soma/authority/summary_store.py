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

from soma.storage import RAW_BYTES, U64_BE, UTF8, Database, StructCodec, TableSpec, WriteBatch
from soma.types.bcs import BcsStruct
from soma.types.commit_summary import CertifiedCommitSummary, CommitSummary
from soma.types.digests import TransactionDigest


class ContentsDigests(BcsStruct):
    """A commit's transaction digests, in execution order."""

    digests: tuple[TransactionDigest, ...]


COMMIT_SUMMARIES = TableSpec("commit_summaries", U64_BE, StructCodec(CommitSummary))
COMMIT_CONTENTS = TableSpec("commit_contents", U64_BE, StructCodec(ContentsDigests))
CERTIFIED_SUMMARIES = TableSpec("certified_summaries", U64_BE, StructCodec(CertifiedCommitSummary))
#: Bookkeeping of the summaries (the certified watermark).
SUMMARY_META = TableSpec("summary_meta", UTF8, RAW_BYTES)
CERTIFIED_THROUGH = "certified_through"
TABLES = (COMMIT_SUMMARIES, COMMIT_CONTENTS, CERTIFIED_SUMMARIES, SUMMARY_META)


class SummaryStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.own = db.table(COMMIT_SUMMARIES)
        self.contents = db.table(COMMIT_CONTENTS)
        self.certified = db.table(CERTIFIED_SUMMARIES)
        self.meta = db.table(SUMMARY_META)

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

    def certified_extent(self, floor: int) -> tuple[int, list[int]]:
        """(the highest index up to which every summary above `floor` is certified, the
        certified indices above it): the certifier's state at start. Certificates can
        complete out of order, so the highest certificate held is not enough."""
        raw = self.meta.get(CERTIFIED_THROUGH)
        through = max(floor, 0 if raw is None else int.from_bytes(raw, "big"))
        above: list[int] = []
        for index in self.certified.keys(start=through + 1):
            if not above and index == through + 1:
                through = index  # recorded lazily: catch up with what is held
                continue
            above.append(index)
        return through, above

    def record_certified_through(self, index: int) -> None:
        """Every summary up to `index` is certified (unsynced: a restart re-derives it
        from the certificates above what it read)."""
        self.meta.put(CERTIFIED_THROUGH, index.to_bytes(8, "big"), sync=False)

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
