"""What the public HTTP API refuses before it does any work, and how it says so.

A node's API is open to anyone, so what one client can make it hold or do is bounded
here, in a pure ASGI middleware (Starlette's `BaseHTTPMiddleware` reads whole bodies,
which is what the body limit must not do):

- request bodies over `max_body_bytes` get 413 `BODY_TOO_LARGE`: at once when the
  Content-Length says so, otherwise as soon as the streamed bytes pass the limit;
- URLs (path and query) over `max_url_bytes` get 414 `URL_TOO_LONG`;
- a client (its IP address; an IPv6 client by its /64) sending faster than `rate_per_s`
  beyond a burst of `burst` gets 429 `RATE_LIMITED` with `Retry-After`.

Requests too malformed or too large for the HTTP parser itself (a request line or
headers beyond `max_head_bytes`) never reach the application; `soma.rpc.server` answers
those in the same JSON form.

Every error of the API is `{"code": ..., "message": ...}` JSON. Messages are cut to
`MESSAGE_CHARS` and quoted input to `ECHO_CHARS`, so that no error repeats a client's
megabytes back to it (or into a log); `error_response` and `validation_error` are what
the exception handlers in `soma.rpc.app` answer with.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import math
import time
import types
import typing
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soma.types.config import ConfigError

#: The longest error message answered, in characters: room for two 66-character object
#: IDs and the prose around them, too short to carry an input back at length.
MESSAGE_CHARS = 200
#: How much of a client's input an error message quotes.
ECHO_CHARS = 64
ELLIPSIS = "…"

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class ApiLimits:
    """The limits of one HTTP API. The defaults are generous for any real client and
    keep what a single client can cost the node small."""

    #: The largest request body read. A signed transaction is a few KiB; without a cap
    #: one request could make the node buffer (and parse) gigabytes.
    max_body_bytes: int = 1 * MIB
    #: The longest URL (path and query string, as sent). Every identifier in a path is
    #: under 100 characters; long URLs only cost parsing, routing and log space.
    max_url_bytes: int = 8 * KIB
    #: About the most the HTTP parser buffers of a request line with its headers before
    #: it refuses the request (uvicorn's `h11_max_incomplete_event_size`): the bound on
    #: what a connection holds before the request reaches the application at all. h11
    #: applies it to a head still incomplete after a read, so a head that arrives in
    #: one read (asyncio reads up to 256 KiB) passes; its URL is then checked here.
    max_head_bytes: int = 32 * KIB
    #: Requests per second one client may send, sustained (None: no rate limit). A rate
    #: limit keeps one client from taking the API (and the node behind it) for itself;
    #: 100/s is far above what a wallet or an explorer needs.
    rate_per_s: float | None = 100.0
    #: Requests a client may send at once above the sustained rate (a page load, a
    #: batch of reads), refilled at `rate_per_s`.
    burst: int = 200
    #: Clients whose rates are tracked at most. The table of clients must not grow with
    #: the number of addresses an attacker uses; the least recently seen are forgotten
    #: first, and any client idle long enough to refill its burst is dropped anyway.
    max_clients: int = 10_000
    #: How much of a refused request's body is read and thrown away so that the client,
    #: which may be sending the whole body before it reads the answer (most HTTP
    #: libraries do), gets the error instead of a reset connection. Past this the
    #: connection is closed; a body declared larger is not read at all.
    drain_bytes: int = 64 * MIB
    #: How long a refused request's body is drained, for the same reason, at most.
    drain_seconds: float = 10.0

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str) -> ApiLimits:
        """Limits from a config's `api_limits` mapping (any subset of the fields);
        a `ConfigError` naming `where` and the field for anything wrong."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        checked: dict[str, Any] = {}
        for name, value in values.items():
            field = f"api_limits.{name}"
            if name not in known:
                raise ConfigError(where, field, "unknown limit")
            allowed = (int, float) if "float" in str(known[name].type) else (int,)
            if value is None and "None" in str(known[name].type):
                checked[name] = None
            elif isinstance(value, bool) or not isinstance(value, allowed) or value < 0:
                raise ConfigError(where, field, f"expected a non-negative number, got {value!r}")
            else:
                checked[name] = value
        try:
            return cls(**checked)
        except ValueError as e:
            raise ConfigError(where, "api_limits", str(e)) from None

    def __post_init__(self) -> None:
        if self.max_head_bytes < self.max_url_bytes + 4 * KIB:
            raise ValueError("max_head_bytes must leave room for the URL and some headers")
        if self.rate_per_s is not None and (self.rate_per_s <= 0 or self.burst < 1):
            raise ValueError("rate_per_s must be positive and burst at least 1")
        if min(self.max_body_bytes, self.max_url_bytes, self.max_clients) < 1:
            raise ValueError("limits must be positive")


def cut(text: str, limit: int) -> str:
    """`text` if it is at most `limit` characters, else its first `limit` and an ellipsis."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def error_body(code: str, message: str) -> bytes:
    """The API's error JSON (as `error_response` renders it), the message cut to
    `MESSAGE_CHARS`, for answers sent outside the application."""
    content = {"code": code, "message": cut(message, MESSAGE_CHARS)}
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_headers(body: bytes, close: bool) -> list[tuple[bytes, bytes]]:
    """The headers of an error answered outside the application (`body` from
    `error_body`), with `Connection: close` when the connection is not to be reused."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return [*headers, (b"connection", b"close")] if close else headers


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error in the API's JSON form; every exception handler answers with this, so
    that no message built from a client's input reaches it at length."""
    return JSONResponse(
        {"code": code, "message": cut(message, MESSAGE_CHARS)}, status_code=status, headers=headers
    )


# --- rate limits ----------------------------------------------------------------------


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets per client, in a table of at most `max_clients`.

    The table is ordered by last use. An entry idle for `burst / rate` seconds has
    refilled to a full bucket, the same as no entry, so such entries are dropped from
    the front as requests come; when the table is full of active clients the least
    recently seen one is forgotten (it comes back with a full burst, which only a
    client that has more addresses than the table can exploit).
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._refill_s = burst / rate_per_s
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float:
        """Spend one request of `client`'s: 0 if it may go ahead, else the seconds until
        it may send again."""
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        while self._buckets:
            client, bucket = next(iter(self._buckets.items()))
            if now - bucket.stamp < self._refill_s:
                return
            del self._buckets[client]


def client_key(scope: Scope) -> str:
    """Who a request is from, for rate limits: its peer's IP address; an IPv6 peer by its
    /64, the block one host is given, so that a host cannot take a fresh limit (and a
    slot in the table) per address."""
    client = scope.get("client")
    if not client:
        return "-"
    host = str(client[0])
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return f"{int(address) >> 64:x}/64"


# --- the middleware -------------------------------------------------------------------


class BodyTooLarge(Exception):
    """Raised into the application when the body it reads passes the limit, to stop it;
    whatever it answers then is replaced by the 413."""


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _declared_length(scope: Scope) -> int | None:
    """The body's length as declared: 0 for no body, None when unknown (chunked)."""
    length = 0
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length


def _url_bytes(scope: Scope) -> int:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return len(path) + (len(query) + 1 if query else 0)


class _BodyGuard:
    """The application's receive and send, counting body bytes as they stream in."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self.received = 0
        self.exceeded = False
        self.ended = False
        self.response_started = False

    async def receive(self) -> Message:
        if self.exceeded:
            raise BodyTooLarge
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.ended = not message.get("more_body", False)
            if self.received > self._limit:
                self.exceeded = True
                raise BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)


class LimitsMiddleware:
    """Applies `ApiLimits` to every HTTP request before (and while) the application
    sees it; see the module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        limits: ApiLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = ApiLimits() if limits is None else limits
        rate = self.limits.rate_per_s
        self.rate_limiter = (
            None
            if rate is None
            else RateLimiter(rate, self.limits.burst, self.limits.max_clients, clock)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _declared_length(scope)
        refusal = self._refusal(scope, length)
        if refusal is not None:
            await self._answer(refusal, length, receive, send)
            return
        guard = _BodyGuard(receive, send, self.limits.max_body_bytes)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.exceeded:
                raise
        if guard.exceeded and not guard.response_started:
            await self._answer(self._too_large(), 0 if guard.ended else None, receive, send)

    def _refusal(self, scope: Scope, length: int | None) -> _Refusal | None:
        """Why the request is refused before the application sees it, if it is."""
        limits = self.limits
        if self.rate_limiter is not None:
            wait_s = self.rate_limiter.take(client_key(scope))
            if wait_s > 0:
                retry = max(1, math.ceil(wait_s))
                return _Refusal(
                    429,
                    "RATE_LIMITED",
                    f"too many requests from this address (at most {self.rate_limiter.rate:g} "
                    f"a second, in bursts of {limits.burst}); retry in {retry} s",
                    ((b"retry-after", str(retry).encode()),),
                )
        if _url_bytes(scope) > limits.max_url_bytes:
            return _Refusal(
                414, "URL_TOO_LONG", f"the URL is longer than {limits.max_url_bytes} bytes"
            )
        if length is not None and length > limits.max_body_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> _Refusal:
        return _Refusal(
            413,
            "BODY_TOO_LARGE",
            f"the request body is larger than {self.limits.max_body_bytes} bytes",
        )

    async def _answer(
        self, refusal: _Refusal, unread: int | None, receive: Receive, send: Send
    ) -> None:
        """Send `refusal`. While body bytes are still to come (`unread`: how many, None
        when unknown), it is sent at once and the body then drained, up to `drain_bytes`
        and `drain_seconds` (not at all when declared larger), before the response ends
        and the connection is closed."""
        body = error_body(refusal.code, refusal.message)
        headers = [*error_headers(body, close=unread != 0), *refusal.headers]
        drain = unread != 0 and (unread is None or unread <= self.limits.drain_bytes)
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": drain})
        if drain:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.limits.drain_seconds):
                    await _drain(receive, self.limits.drain_bytes)
            await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop a request's body until it ends, the client leaves, or `limit`."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


# --- validation errors in plain words -------------------------------------------------

_JSON_PROBLEMS = {
    "Expecting value": "expected a value",
    "Expecting ',' delimiter": "expected ','",
    "Expecting ':' delimiter": "expected ':'",
    "Expecting property name enclosed in double quotes": "expected a name in double quotes",
    "Unterminated string starting at": "a string is not closed",
    "Invalid control character at": "a control character (a raw newline or tab) in a string",
    "Invalid \\escape": "an invalid backslash escape",
    "Invalid \\uXXXX escape": "an invalid \\u escape",
    "Extra data": "more data after the JSON value",
}

_TYPE_WORDS: dict[object, str] = {
    str: "a string",
    bytes: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a JSON object",
    list: "a list",
    type(None): "null",
}

_SOURCES = {"path": "path parameter", "query": "query parameter", "header": "header"}


def _shown(value: object) -> str:
    """A client's value as JSON, cut to `ECHO_CHARS`."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return cut(text, ECHO_CHARS)


def _type_words(annotation: object) -> str | None:
    if annotation in _TYPE_WORDS:
        return _TYPE_WORDS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a JSON object"
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return "a list"
    if origin is dict:
        return "a JSON object"
    if origin in (typing.Union, types.UnionType):
        words = [_type_words(a) for a in typing.get_args(annotation)]
        if all(words):
            return " or ".join(typing.cast(list[str], words))
    return None


def _field_annotation(route: object, loc: Sequence[object]) -> object:
    """The declared type at `loc` in `route`'s parameters, or None if not found."""
    if not loc:
        return None
    if loc[0] == "body":
        annotation: object = getattr(getattr(route, "body_field", None), "field_info", None)
        annotation = getattr(annotation, "annotation", None)
        for name in loc[1:]:
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                field = annotation.model_fields.get(str(name))
                annotation = None if field is None else field.annotation
            elif isinstance(name, int) and typing.get_origin(annotation) is list:
                annotation = typing.get_args(annotation)[0]
            else:
                return None
        return annotation
    if len(loc) != 2:
        return None
    dependant = getattr(route, "dependant", None)
    params = getattr(dependant, f"{loc[0]}_params", None) or ()
    for param in params:
        if getattr(param, "alias", None) == loc[1]:
            return getattr(getattr(param, "field_info", None), "annotation", None)
    return None


def _where(loc: Sequence[object]) -> str:
    if not loc:
        return "the request"
    source, rest = loc[0], loc[1:]
    if source == "body":
        if not rest:
            return "the request body"
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
        return f"the field {cut(path, ECHO_CHARS)!r} in the request body"
    name = ".".join(str(p) for p in rest)
    return f"the {_SOURCES.get(str(source), str(source))} {cut(name, ECHO_CHARS)!r}"


def json_syntax_message(problem: str, body: object, position: int) -> str:
    """Where and why a request body is not JSON, as `json` reports it, in plain words."""
    words = next((w for prefix, w in _JSON_PROBLEMS.items() if problem.startswith(prefix)), problem)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        line = body.count("\n", 0, position) + 1
        column = position - body.rfind("\n", 0, position)
        where = f"line {line}, column {column}"
    else:
        where = f"character {position + 1}"
    return f"the request body is not valid JSON: {words} at {where}"


def validation_error(
    errors: Sequence[Mapping[str, Any]], body: object, route: object = None
) -> tuple[str, str]:
    """The code and plain message for FastAPI's request validation errors: which field,
    what it should be (from `route`'s declared types where found), and at most a short
    prefix of what was sent."""
    if not errors:
        return "INVALID_REQUEST", "the request is not valid"
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
        problem = str((first.get("ctx") or {}).get("error", "invalid"))
        return "INVALID_JSON", json_syntax_message(problem, body, position)
    where = _where(loc)
    expected = _type_words(_field_annotation(route, loc))
    if expected is None and loc == ("body",):
        expected = "a JSON object"
    message = _problem(kind, where, expected, first)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return "INVALID_REQUEST", message


def _problem(kind: str, where: str, expected: str | None, error: Mapping[str, Any]) -> str:
    value = error.get("input")
    if kind == "missing":
        if where == "the request body":
            return f"the request body is missing ({expected} is required)"
        return f"{where} is missing" + (f" ({expected} is required)" if expected else "")
    if isinstance(value, bytes) and where == "the request body":
        return "the request body must be JSON, sent with Content-Type: application/json"
    got = f"(got {_shown(value)})"
    if expected is not None and kind.endswith(("_type", "_parsing")):
        return f"{where} must be {expected} {got}"
    if kind == "string_pattern_mismatch":
        return f"{where} is not in the form the API document gives for it {got}"
    msg = str(error.get("msg", "")) or "Not valid"
    if msg.startswith("Input should be "):
        return f"{where} must be {msg.removeprefix('Input should be ')} {got}"
    return f"{where}: {msg[0].lower()}{msg[1:]} {got}"


#: Codes for the HTTP errors the framework raises itself (unknown path, wrong method...).
HTTP_CODES = {
    400: "INVALID_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "BODY_TOO_LARGE",
    414: "URL_TOO_LONG",
    429: "RATE_LIMITED",
}


def http_error_response(
    status: int, detail: str, headers: Mapping[str, str] | None, cause: BaseException | None
) -> JSONResponse:
    """The JSON form of a Starlette/FastAPI `HTTPException`, keeping its headers (405's
    `Allow` lists the methods the path takes)."""
    code = HTTP_CODES.get(status, f"HTTP_{status}")
    allow = (headers or {}).get("Allow")
    if isinstance(cause, RecursionError):
        code, detail = "INVALID_JSON", "the request body is not valid JSON: it is nested too deeply"
    elif status == 405 and allow:
        detail = f"method not allowed; this path takes {allow}"
    return error_response(status, code, detail, headers)
