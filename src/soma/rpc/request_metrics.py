"""Counting the HTTP API's requests (`soma.metrics.api`), outermost of the middlewares
so that refusals by the limits (413, 429) count too.

Requests are labelled by the route's template (`/objects/{object_id}`), never by the
raw path: a label per object ID would grow the metrics without bound. A request the
limits refused before routing is labelled with the route its path would have taken; a
path no route matches is labelled `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soma.metrics import api as metrics

UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        #: The application's routes, to name a request no route answered.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the application raises

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_of(scope, self.routes)
            metrics.observe("http", route, str(status), time.perf_counter() - started)


def route_of(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The template of the route that answered (the router records it in the scope),
    else of the first route whose path matches."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    for candidate in routes:
        if candidate.matches(scope)[0] is not Match.NONE:
            path = getattr(candidate, "path", None)
            if isinstance(path, str):
                return path or "/"
    return UNMATCHED
