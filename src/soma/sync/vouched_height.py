"""How far the certified chain reaches, as the committee vouches for it.

A validator decides from this whether it has fallen too far behind for consensus and
must catch up by state sync. One peer's word is not enough: a Byzantine peer claiming a
commit far ahead would take the validator out of consensus to chase a chain no one can
serve. So every committee member is asked how far it can serve, and the answer is the
highest commit that members holding f+1 stake (at least one honest) can serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from soma.p2p.client import P2pClient
from soma.p2p.errors import PeerCallError
from soma.p2p.peer_table import KnownPeer
from soma.sync import wire
from soma.types.committee import Committee
from soma.types.digests import CommitSummaryDigest


async def vouched_height(
    client: P2pClient,
    peers: Sequence[KnownPeer],
    committee: Committee,
    genesis: CommitSummaryDigest,
    timeout_s: float,
) -> int:
    """The highest commit that committee members with f+1 stake say they can serve, on
    the chain of `genesis` (0 if they are not enough to say)."""
    stake_of = {m.network_key: m.stake for m in committee.members}
    asked = [p for p in peers if p.peer_id in stake_of and p.addresses]

    async def ask(peer: KnownPeer) -> tuple[int, int] | None:
        try:
            info = await client.call(
                peer.addresses[0],
                wire.GET_CHAIN_INFO,
                wire.GetChainInfoRequest(0, 0),
                wire.ChainInfo,
                timeout_s=timeout_s,
                peer_id=peer.peer_id,
            )
        except PeerCallError:
            return None
        if info.genesis_digest != genesis:
            return None
        return info.highest_available, stake_of[peer.peer_id]

    answers = [a for a in await asyncio.gather(*(ask(p) for p in asked)) if a is not None]
    stake = 0
    for height, member_stake in sorted(answers, reverse=True):
        stake += member_stake
        if stake >= committee.validity_threshold:
            return height
    return 0
