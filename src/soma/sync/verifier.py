"""What a syncing node checks of what a peer sends, before anything is executed.

Sans-IO: summaries and contents in, verdicts out. A certified summary is accepted as the
next link of the chain only if:

- it is for the next index (no gap, no repeat) and names the previous summary's digest
  (the chain continues from this node's own last summary, back to the genesis summary
  this node derived itself, so two chains can never be mixed);
- its epoch is the one the chain is in (an epoch ends with end-of-epoch data; until
  then the next summary is of the same epoch);
- 2f+1 stake of that epoch's committee signed it (valid signatures, members only). The
  committee of an epoch the node has not entered is the one the previous epoch's last
  summary, certified by the previous committee, names: committees are handed over from
  certified data alone.

Contents are accepted for a verified summary only if their index matches and their
transactions digest (over every transaction's full bytes, in order) is the summary's.
Anything else is the peer's fault: `VerificationError` says what, and the peer is
dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from soma.types.commit_summary import CertifiedCommitSummary, CommitContents, CommitSummary
from soma.types.committee import Committee
from soma.types.error import SomaError


class VerificationError(SomaError):
    """A peer sent a summary or contents that fail verification."""

    code = "SYNC_VERIFICATION_FAILED"


class ChainVerifier:
    def __init__(self, last: CommitSummary, committee_of: Callable[[int], Committee]) -> None:
        """`last` is the last summary of the chain as this node holds it (its genesis
        summary at first); `committee_of(epoch)` gives an epoch's committee."""
        self.last = last
        self._committee_of = committee_of
        #: Committees named by the certified end-of-epoch summaries verified here.
        self._announced: dict[int, Committee] = {}
        self._learn(last)

    def _learn(self, summary: CommitSummary) -> None:
        if summary.end_of_epoch is not None:
            self._announced[summary.epoch + 1] = summary.end_of_epoch.next_committee

    def committee(self, epoch: int) -> Committee:
        announced = self._announced.get(epoch)
        return announced if announced is not None else self._committee_of(epoch)

    def verify_next(self, certified: CertifiedCommitSummary) -> None:
        """Accept `certified` as the next link, or raise `VerificationError`."""
        summary = certified.data
        expected = self.last.index + 1
        if summary.index != expected:
            raise VerificationError(f"summary {summary.index} where {expected} was expected")
        if summary.previous_digest != self.last.digest():
            raise VerificationError(
                f"summary {summary.index} does not chain to summary {self.last.index}: it "
                f"names {summary.previous_digest}, not {self.last.digest()}"
            )
        epoch = self.last.epoch + (1 if self.last.end_of_epoch is not None else 0)
        if summary.epoch != epoch:
            raise VerificationError(
                f"summary {summary.index} is of epoch {summary.epoch}, the chain is in {epoch}"
            )
        try:
            certified.verify(self.committee(epoch))
        except SomaError as e:
            raise VerificationError(
                f"summary {summary.index} is not certified by epoch {epoch}'s committee: "
                f"{e.message}"
            ) from None
        if summary.end_of_epoch is not None and summary.end_of_epoch.next_committee.epoch != (
            epoch + 1
        ):
            raise VerificationError(
                f"summary {summary.index} ends epoch {epoch} naming a committee of epoch "
                f"{summary.end_of_epoch.next_committee.epoch}"
            )
        self.last = summary
        self._learn(summary)


def verify_contents(summary: CommitSummary, contents: CommitContents) -> None:
    """Raise `VerificationError` unless `contents` are the transactions `summary`
    certifies, in its order."""
    if contents.index != summary.index:
        raise VerificationError(f"contents of commit {contents.index} for {summary.index}")
    if contents.digest() != summary.transactions_digest:
        raise VerificationError(
            f"the contents of commit {summary.index} do not match its certified summary"
        )
