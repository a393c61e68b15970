"""The Python SDK: a client of a soma network's HTTP API, blocking (`Client`) or async
(`AsyncClient`), both running the same sans-IO flows (`soma.sdk.api`) over httpx.

It builds and signs transactions with the caller's key and chooses coins as a user
thinks of them (`soma.sdk.coins`): a transfer succeeds whenever the address holds
enough, however its balance is split into coins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soma.sdk.async_client import AsyncClient
    from soma.sdk.client import Client
    from soma.sdk.coins import Coin
    from soma.sdk.errors import ApiError
    from soma.sdk.results import result_error
    from soma.sdk.validator import Registration, registration
    from soma.sdk.wire import Page

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "Coin",
    "Page",
    "Registration",
    "registration",
    "result_error",
]

#: Where each public name lives: imported on first use, so a program that only needs
#: the blocking client does not load the async one (a quick CLI command counts).
_HOMES = {
    "ApiError": "soma.sdk.errors",
    "AsyncClient": "soma.sdk.async_client",
    "Client": "soma.sdk.client",
    "Coin": "soma.sdk.coins",
    "Page": "soma.sdk.wire",
    "result_error": "soma.sdk.results",
    "Registration": "soma.sdk.validator",
    "registration": "soma.sdk.validator",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'soma.sdk' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
