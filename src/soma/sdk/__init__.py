"""The Python SDK: a client of the HTTP API, sync (`Client`) and async (`AsyncClient`)."""

from soma.sdk.client import ApiError, AsyncClient, Client

__all__ = ["ApiError", "AsyncClient", "Client"]
