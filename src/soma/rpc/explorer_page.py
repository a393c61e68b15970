"""The explorer: a web page the API serves at `/explorer`, with its assets under it.

Plain files shipped in the package (`soma/rpc/explorer/`: HTML, one script, one style
sheet), so nothing is built at install time and a non-editable install serves them as
they are. The page reads only this API (same origin) and loads nothing from anywhere
else: no CDN, no web font, no framework. Its Content-Security-Policy says so to the
browser too, which refuses any other source even if a later change tried one.

The routes are left out of the OpenAPI document: they serve a page, not the API.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

from soma.rpc.limits import error_response

#: The files under /explorer/, and their content types (the page itself is /explorer).
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
PAGE = "index.html"
#: Only this origin, for everything; the favicon is an inline data URL.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@functools.cache
def _read(name: str) -> bytes:
    return resources.files("soma.rpc").joinpath("explorer").joinpath(name).read_bytes()


def add_explorer_page(app: FastAPI) -> None:
    @app.get("/explorer", include_in_schema=False)
    async def page() -> Response:
        return Response(_read(PAGE), media_type="text/html; charset=utf-8", headers=_HEADERS)

    @app.get("/explorer/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return error_response(404, "NOT_FOUND", f"no explorer file {name[:64]}")
        return Response(_read(name), media_type=media_type, headers=_HEADERS)
