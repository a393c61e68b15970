"""The state-sync messages of the P2P service (BCS), and their bounds.

- `GetChainInfo`: which chain a peer follows (its genesis summary's digest) and how far
  it can serve (its highest commit whose certified summary and contents it holds).
- `GetSummaries`: certified summaries from an index, consecutive.
- `GetContents`: the ordered signed transactions of given commits.

A server answers less than asked when a bound is reached (count or bytes), never more;
the client takes what it gets and asks for the rest later.
"""

from __future__ import annotations

from soma.types.bcs import BcsStruct, u32, u64
from soma.types.commit_summary import CertifiedCommitSummary, CommitContents
from soma.types.digests import CommitSummaryDigest

GET_CHAIN_INFO = "GetChainInfo"
GET_SUMMARIES = "GetSummaries"
GET_CONTENTS = "GetContents"

#: Most summaries in one GetSummaries answer (a certified summary is about 500 bytes).
MAX_SUMMARIES = 256
#: Most commits asked for in one GetContents request.
MAX_CONTENTS_INDICES = 64
#: A GetContents answer stops growing past this many bytes (at least one commit is
#: always served whole, up to the response cap).
CONTENTS_SOFT_BYTES = 4 * 1024 * 1024
#: Requests are small.
MAX_REQUEST_BYTES = 4 * 1024


#: Longest a GetChainInfo answer may be held back waiting for progress.
MAX_WAIT_MS = 5_000


class GetChainInfoRequest(BcsStruct):
    """Answer at once if the node can serve beyond `after`; otherwise when it can, or
    after `wait_ms` (at most `MAX_WAIT_MS`) at the latest: a long poll, so a follower
    learns of a new certified commit as soon as its peer has it."""

    after: u64
    wait_ms: u32


class ChainInfo(BcsStruct):
    genesis_digest: CommitSummaryDigest
    #: Every commit up to this one can be served: certified summary and contents.
    highest_available: u64


class GetSummariesRequest(BcsStruct):
    start: u64
    count: u32


class GetSummariesResponse(BcsStruct):
    summaries: tuple[CertifiedCommitSummary, ...]


class GetContentsRequest(BcsStruct):
    indices: tuple[u64, ...]


class GetContentsResponse(BcsStruct):
    """Contents of the commits asked for, in the order asked, stopping at the first one
    not held or when the answer is large enough."""

    contents: tuple[CommitContents, ...]
