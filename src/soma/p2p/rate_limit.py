"""Calls per second from one host, so no single machine can keep a node's P2P server
busy answering it.

Counted in one-second windows (sans-IO: the time comes in), per host (the caller's IP
address without its port: a host cannot take a fresh allowance per connection). A
window tracks at most `max_hosts` hosts; a new host beyond them is refused until the
window ends, which only a flood from that many machines at once can cause.
"""

from __future__ import annotations

import dataclasses

from soma.types.error import SomaError


@dataclasses.dataclass(frozen=True)
class RateLimit:
    #: Generous: a local network runs every node on one host, and a syncing fullnode
    #: makes many calls; this is a bound against floods, not traffic shaping.
    calls_per_s: int = 500
    max_hosts: int = 10_000

    def __post_init__(self) -> None:
        if self.calls_per_s < 1 or self.max_hosts < 1:
            raise SomaError(f"rate limits must be positive: {self}")


class HostRateLimiter:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._window = -1
        self._counts: dict[str, int] = {}

    def allow(self, host: str, now_ms: int) -> bool:
        """Count one call from `host`; whether it may go ahead."""
        window = now_ms // 1000
        if window != self._window:
            self._window = window
            self._counts.clear()
        count = self._counts.get(host, 0)
        if count >= self.limit.calls_per_s:
            return False
        if count == 0 and len(self._counts) >= self.limit.max_hosts:
            return False
        self._counts[host] = count + 1
        return True


def caller_host(peer: str) -> str:
    """The host of a gRPC peer string (`ipv4:1.2.3.4:5678`, `ipv6:[::1]:5678`): the
    part before the port, or the whole string when it has none."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rpartition(':')[0]}"
    return peer
