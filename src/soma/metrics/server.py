"""Serving a node's metrics: prometheus-client's own HTTP server, on a thread.

A thread, not the node's event loop: a scrape then answers even while the loop is
busy (a long execution backlog, a stalled task), which is when an operator needs the
numbers most. Gauges and counters are updated under prometheus-client's locks, so the
thread reads consistent values.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from soma.types.error import SomaError


class MetricsAddressError(SomaError):
    """The metrics address cannot be listened on (taken, or not this machine's)."""

    code = "METRICS_ADDRESS_UNAVAILABLE"


class MetricsServer:
    """Prometheus text at `http://<address>/metrics` (any path answers the same)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_port)

    def start(self) -> None:
        host, _, port = self.address.rpartition(":")
        try:
            self._server, self._thread = start_http_server(int(port), host)
        except OSError as e:
            raise MetricsAddressError(
                f"cannot serve metrics on {self.address}: {e.strerror or e}"
            ) from None

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
