"""Discovery's knobs, with the defaults a node runs with.

Every duration is in milliseconds, because the sans-IO table takes the time as a number
of them; tests drive rounds fast by passing a short `interval_ms`.
"""

from __future__ import annotations

import dataclasses

from soma.p2p import wire
from soma.p2p.errors import P2pError


@dataclasses.dataclass(frozen=True)
class DiscoveryParameters:
    #: A round every so often: ask a few known peers for theirs.
    interval_ms: int = 5_000
    #: Peers asked in one round, drawn at random from those known.
    peers_per_round: int = 3
    #: Deadline of one ExchangePeers call.
    call_timeout_ms: int = 5_000
    #: Infos sent in one reply, and the most taken from one (the wire's cap at most).
    max_peers_per_reply: int = wire.MAX_PEERS_PER_REPLY
    #: Infos kept; beyond, the oldest of nodes outside the committee are forgotten.
    max_known_peers: int = 1_000
    #: An info stamped further ahead of our clock than this is refused.
    max_future_ms: int = 30_000
    #: An info stamped longer ago than this is forgotten or refused (a committee
    #: member's never: everyone knows the committee).
    expiry_ms: int = 10 * 60_000
    #: Our own info is signed again, with the time, once it is this old.
    resign_interval_ms: int = 60_000
    #: Calls to a peer that fail in a row before it is dropped...
    max_failures: int = 3
    #: ...for this long (not dialled, not relayed, its infos refused)...
    failure_ban_ms: int = 60_000
    #: ...and a peer that sent invalid data (bad signature, malformed answer, another
    #: peer id than expected) for this long.
    invalid_ban_ms: int = 10 * 60_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise P2pError(f"discovery parameter {field.name} must be a positive integer")
        if self.max_peers_per_reply > wire.MAX_PEERS_PER_REPLY:
            raise P2pError(
                f"max_peers_per_reply is at most {wire.MAX_PEERS_PER_REPLY} (the wire's cap)"
            )
        if self.resign_interval_ms >= self.expiry_ms:
            raise P2pError("resign_interval_ms must be below expiry_ms, or our info expires")
