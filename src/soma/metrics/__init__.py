"""Prometheus metrics of a node.

One node runs per process, so each component's metrics are module-level objects on
prometheus-client's default registry (which also carries the process's CPU, memory and
file descriptors): `consensus`, `authority`, `sync` (state sync and P2P) and `api` (the
HTTP API and the validator service). Components update them where their outputs are
carried out, never inside the sans-IO cores, so the simulator pays nothing for them.
`server` serves the registry on the node's `metrics_address`; docs/metrics.md lists
every metric.

Names follow Prometheus conventions: the `soma_` prefix, base units in the name
(`_seconds`, `_bytes`), counters exposed with `_total`.
"""

from prometheus_client import disable_created_metrics

# The `_created` series (when each counter was made) only double the text a scrape
# carries: a node's start time is in `process_start_time_seconds`.
disable_created_metrics()  # type: ignore[no-untyped-call]
