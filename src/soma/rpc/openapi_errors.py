"""The error answers in the API's OpenAPI document: every status the server can give.

Each route lists its own errors (`error_responses(400, 404, ...)`), and every route
also gets those that the limits (`soma.rpc.limits`) can give on any request: 413 for a
body too large, 414 for a URL too long, 429 with `Retry-After` past the rate limit,
431 for headers too large. FastAPI documents a 422 for every route with parameters,
but this API answers bad input with 400 and the error body: `document_errors` takes
the 422 (and its schemas) out of the document, so it shows what the server does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from soma.rpc.api_models import ErrorBody

_DESCRIPTIONS = {
    400: "Bad input: a malformed identifier, parameter or body, or a transaction the "
    "validators refuse (the code says which).",
    404: "Not found.",
    413: "The request body is over the limit (1 MiB by default).",
    414: "The URL is over the limit (8 KiB by default).",
    429: "Too many requests from this client; retry after `Retry-After` seconds.",
    431: "The request headers are over the limit.",
    503: "The network cannot answer (no validator is reachable), or the faucet is empty.",
    504: "The network did not certify the transaction in time (`EFFECTS_TIMEOUT`: it may "
    "still execute), or it did and the node serving the API did not execute it in time "
    "(`LOCAL_EXECUTION_TIMEOUT`: the node is behind; its reads show it once caught up).",
}
#: What the limits can answer on any route.
ANY_ROUTE = (413, 414, 429, 431)
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before the next request.",
        "schema": {"type": "integer", "minimum": 1},
        "required": True,
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer these errors (and the limits')."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *ANY_ROUTE}):
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` drop FastAPI's 422 answers, which this API never gives."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
