"""The SDK's sans-IO core: every SDK call is a *flow*, a generator that yields the
steps it needs done (`Request`, `Sleep`, `Parallel`) and gets their outcomes back.

Building requests, decoding answers and errors, retrying a rate-limited call and every
multi-step operation (paging, coin selection, merges) live here once; the sync
`Client` and the async `AsyncClient` only carry the steps out (an httpx call, a sleep),
so they cannot drift apart, and the logic is tested by stepping a flow by hand.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import quote

import httpx

from soma.sdk.errors import ApiError

T = TypeVar("T")

#: Seconds a call may take: long, because executing a transaction waits for its
#: certificate from a quorum of validators.
DEFAULT_TIMEOUT_S = 90.0
#: How often a call answered 429 is tried again before RATE_LIMITED.
DEFAULT_MAX_RETRIES = 3
#: The longest wait honoured from a Retry-After header: a server asking for more is
#: answered with RATE_LIMITED sooner rather than a client that seems hung.
MAX_RETRY_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP call, relative to the API's base URL."""

    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait before going on (a rate-limited call's Retry-After)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Parallel:
    """Run independent flows, concurrently where the client can; the outcome is the
    list of their results, an `ApiError` in place of a flow's result where it raised
    one (so one failure does not hide what the others did)."""

    flows: tuple[Flow[Any], ...]


Step: TypeAlias = Request | Sleep | Parallel
#: A flow answers a `Request` with an `httpx.Response` (or the `httpx.HTTPError` the
#: call raised), a `Sleep` with None, a `Parallel` with its list of outcomes.
Flow: TypeAlias = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A flow's result, once it has no step left."""

    value: T


def advance(flow: Flow[T], reply: Any) -> Step | Done[T]:
    """Give a flow its last step's outcome; its next step, or `Done` with its result.
    (The clients' run loops: `while not isinstance(step := advance(...), Done)`.)"""
    try:
        return flow.send(reply)
    except StopIteration as stop:
        done: Done[T] = Done(stop.value)
        return done


def path(*segments: object) -> str:
    """An API path from its segments, each quoted (an address or digest typed by a user
    must not add path segments or a query)."""
    return "".join("/" + quote(str(s), safe="") for s in segments)


def call(request: Request, max_retries: int = DEFAULT_MAX_RETRIES) -> Flow[Any]:
    """Make `request` and return its decoded JSON answer, retrying a 429 up to
    `max_retries` times after the wait its Retry-After asks for."""
    for attempt in range(max_retries + 1):
        reply = yield request
        if isinstance(reply, httpx.HTTPError):
            raise transport_error(reply)
        assert isinstance(reply, httpx.Response)
        if reply.status_code != 429:
            return decode_response(reply)
        if attempt < max_retries:
            yield Sleep(retry_delay(reply.headers.get("Retry-After"), attempt))
    raise rate_limited(reply, max_retries)


def decode_response(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; else the server's `{"code", "message"}` as an
    `ApiError`, or `HTTP_<status>` when the answer is not that JSON (a proxy's page)."""
    status = response.status_code
    try:
        data = json.loads(response.content)
    except ValueError:
        what = "an answer that is not JSON"
        if 200 <= status < 300:
            raise ApiError(f"HTTP_{status}", f"the API sent {what}", status) from None
        raise ApiError(f"HTTP_{status}", _reason(response, what), status) from None
    if 200 <= status < 300:
        return data
    if isinstance(data, dict) and isinstance(data.get("code"), str) and "message" in data:
        raise ApiError(data["code"], str(data["message"]), status)
    raise ApiError(f"HTTP_{status}", _reason(response, "an error without a code"), status)


def _reason(response: httpx.Response, what: str) -> str:
    phrase = response.reason_phrase or "error"
    return f"HTTP {response.status_code} {phrase} ({what})"


def retry_delay(retry_after: str | None, attempt: int, now: datetime | None = None) -> float:
    """Seconds to wait before trying a rate-limited call again: the Retry-After header
    (seconds, or an HTTP date), else an exponential backoff; at most MAX_RETRY_WAIT_S."""
    delay = float(2**attempt)
    if retry_after is not None:
        text = retry_after.strip()
        try:
            delay = float(text)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                pass
            else:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                delay = (when - (now or datetime.now(UTC))).total_seconds()
    if delay != delay:  # NaN
        delay = float(2**attempt)
    return min(max(delay, 0.0), MAX_RETRY_WAIT_S)


def rate_limited(response: httpx.Response, retries: int) -> ApiError:
    """RATE_LIMITED once the retries are spent, with the server's message if any."""
    try:
        message = str(json.loads(response.content)["message"])
    except (ValueError, KeyError, TypeError):
        message = "too many requests"
    return ApiError(
        "RATE_LIMITED", f"{message} (still refused after {retries} retries)", response.status_code
    )


def transport_error(error: httpx.HTTPError) -> ApiError:
    """TIMEOUT when the API did not answer in time, UNREACHABLE when it could not be
    reached at all (refused, DNS, reset): different advice to the user."""
    try:
        where = str(error.request.url)
    except RuntimeError:
        where = "the API"
    if isinstance(error, httpx.TimeoutException):
        return ApiError("TIMEOUT", f"no answer from {where} in time ({type(error).__name__})")
    return ApiError("UNREACHABLE", f"cannot reach {where}: {error or type(error).__name__}")


def invalid_response(what: str, data: object) -> ApiError:
    """An answer that does not have the contract's shape (a server of another version)."""
    shown = repr(data)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return ApiError("INVALID_RESPONSE", f"unexpected answer for {what}: {shown}")
