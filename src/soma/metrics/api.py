"""Metrics of the requests a node answers: by API, route and status, and their latency.

Three APIs share these, so one query covers everything a node serves: `http` (the
public HTTP API a fullnode serves, counted by `soma.rpc.request_metrics`), `validator`
(the validator service over gRPC, where clients and fullnodes submit: counted by
`soma.authority.service_metrics`) and `p2p` (the P2P service: discovery and state sync,
counted by `soma.p2p.server`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Seconds: reads answer in milliseconds, a transaction waits for its certificate and
#: its execution (a second or so), long polls up to a minute.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter(
    "soma_api_requests",
    "Requests answered, by API (http, validator, p2p), route (the HTTP route's template "
    "or the gRPC method) and status (the HTTP status code or the gRPC status name).",
    ["api", "route", "status"],
    registry=None,
)
LATENCY = Histogram(
    "soma_api_request_duration_seconds",
    "Time to answer a request, by API and route.",
    ["api", "route"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)


def declare(api: str, route: str) -> None:
    """Show `route`'s successful answers (at 0) before its first request: a route that
    appears only once called makes rates and alerts start from nothing."""
    REQUESTS.labels(api, route, "200" if api == "http" else "OK")
    LATENCY.labels(api, route)


def observe(api: str, route: str, status: str, seconds: float) -> None:
    REQUESTS.labels(api, route, status).inc()
    LATENCY.labels(api, route).observe(seconds)
