"""The Python SDK: a client of a soma network's HTTP API, blocking (`Client`) or async
(`AsyncClient`), both running the same sans-IO flows (`soma.sdk.api`) over httpx.

It builds and signs transactions with the caller's key and chooses coins as a user
thinks of them (`soma.sdk.coins`): a transfer succeeds whenever the address holds
enough, however its balance is split into coins.
"""

from soma.sdk.async_client import AsyncClient
from soma.sdk.client import Client
from soma.sdk.coins import Coin
from soma.sdk.errors import ApiError
from soma.sdk.results import result_error
from soma.sdk.wire import Page

__all__ = ["ApiError", "AsyncClient", "Client", "Coin", "Page", "result_error"]
