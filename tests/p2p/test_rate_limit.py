"""Calls per host per second, sans IO."""

from __future__ import annotations

from soma.p2p.rate_limit import HostRateLimiter, RateLimit, caller_host


def test_calls_beyond_the_limit_wait_for_the_next_second() -> None:
    limiter = HostRateLimiter(RateLimit(calls_per_s=2))
    assert [limiter.allow("a", 5_000) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 5_999)  # each host has its own allowance
    assert limiter.allow("a", 6_000)


def test_a_window_tracks_at_most_max_hosts() -> None:
    limiter = HostRateLimiter(RateLimit(calls_per_s=5, max_hosts=2))
    assert limiter.allow("a", 0) and limiter.allow("b", 0)
    assert not limiter.allow("c", 0)
    assert limiter.allow("a", 0)  # hosts already counted go on
    assert limiter.allow("c", 1_000)


def test_the_host_of_a_grpc_peer() -> None:
    assert caller_host("ipv4:127.0.0.1:5555") == "ipv4:127.0.0.1"
    assert caller_host("ipv6:[::1]:5555") == "ipv6:[::1]"
    assert caller_host("unix:/tmp/x") == "unix:/tmp/x"
