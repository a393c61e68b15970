"""What the blocking and the async client share: their settings, and the `Api` that
holds the flows and their state (the fee read once). Each client only opens its own
kind of httpx client and carries out the flows' steps."""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from soma.sdk.api import Api
from soma.sdk.core import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S

TransportT = TypeVar("TransportT")


class ClientBase(ABC, Generic[TransportT]):
    """A client of the API at `api_url`. Calls time out after `timeout_s` (long by
    default: executing waits for a certificate); a 429 is retried `max_retries` times;
    `transport` replaces the network (tests: an `httpx.MockTransport`)."""

    def __init__(
        self,
        api_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: TransportT | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self.api = Api(max_retries)
        self._connect(transport)

    @abstractmethod
    def _connect(self, transport: TransportT | None) -> None:
        """Open the HTTP client every call goes through (one, for connection reuse)."""


def tls_verification(api_url: str) -> ssl.SSLContext | bool:
    """What the httpx client verifies TLS with: httpx's default (certifi's authorities)
    for an https API. An http API never speaks TLS, so it gets a context that trusts no
    authority (any TLS connection through it would fail), which skips loading the CA
    bundle: a quarter of a quick CLI command's time."""
    if api_url.startswith("https:"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
