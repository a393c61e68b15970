"""A validator's way back when it fell further behind than consensus can bring it.

Peers keep `retained_commits` commits of consensus data. A validator that was down or cut
off for longer finds the commits it lacks gone, so commit sync cannot help it. The node
watches for that: every few seconds it asks the committee how far the certified chain
reaches (`vouched_height`: what f+1 stake can serve) and compares it with what it
executed. Beyond half the retention it stops its consensus instance, follows the chain
by state sync like a fullnode (certified summaries, contents checked against them, its
own effects and state roots checked against theirs; across epoch changes too) until it
is close to the tip, and resumes consensus at the last commit it executed
(`ConsensusAuthority.start` with `resume_at`, which installs the consensus history
before it from peers). Commit sync covers what remains. The steps are the node's
(`soma.node.node.SomaNode._catch_up`); the measures are here.
"""

from __future__ import annotations

import logging

from soma.authority.state import AuthorityState
from soma.p2p.service import P2pService
from soma.sync.vouched_height import vouched_height
from soma.types.consensus.commit_ref import CommitRef
from soma.types.crypto import Ed25519PublicKey
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

#: How often the lag is measured, and the longest wait for a peer's answer.
CHECK_INTERVAL_S = 5.0
ASK_TIMEOUT_S = 5.0


class CatchUpError(SomaError):
    code = "CATCH_UP"


async def measure_lag(state: AuthorityState, p2p: P2pService) -> tuple[int, int]:
    """(how far the committee vouches the certified chain reaches, how far behind it
    this node's execution is)."""
    genesis = state.store.summaries.summary(0)
    if genesis is None:
        raise CatchUpError("the store has no genesis summary")
    height = await vouched_height(
        p2p.client, p2p.peers(), state.epoch_store.committee, genesis.digest(), ASK_TIMEOUT_S
    )
    return height, height - state.executed_commit


async def follow_until_executed(state: AuthorityState) -> CommitRef | None:
    """Once state sync stopped feeding `state`: wait until everything handed to it is
    executed, and return the last commit as a consensus commit reference of its epoch
    (its digest from the certified summary), where consensus resumes; None if the epoch
    has no commit yet (consensus then starts afresh)."""
    handled = state.handled_commit
    while state.executed_commit < handled:
        if state.failure is not None:
            raise CatchUpError(f"execution failed while catching up: {state.failure}")
        await state.wait_for_progress(1.0)
    if handled == state.commit_offset:
        return None
    certified = state.store.summaries.certified_summary(handled)
    if certified is None:
        raise CatchUpError(f"commit {handled} was executed without its certificate")
    return CommitRef(handled - state.commit_offset, certified.data.commit_digest)


def _report(p2p: P2pService, peer: Ed25519PublicKey) -> None:
    p2p.report_misbehaviour(peer)
