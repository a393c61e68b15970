"""The sans-IO core, stepped by hand: decoding answers and errors, retrying 429s,
transport failures, and the contract's JSON shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from soma.sdk.core import (
    MAX_RETRY_WAIT_S,
    Done,
    Request,
    Sleep,
    advance,
    call,
    decode_response,
    path,
    retry_delay,
)
from soma.sdk.errors import ApiError
from soma.sdk.wire import address, coin_from_json, page_from_json, page_params
from soma.types.base import SomaAddress

GET = Request("GET", "/status")


def error_of(response: httpx.Response) -> ApiError:
    with pytest.raises(ApiError) as e:
        decode_response(response)
    return e.value


def test_call_returns_the_json_of_a_success() -> None:
    flow = call(GET)
    assert advance(flow, None) == GET
    assert advance(flow, httpx.Response(200, json={"epoch": 3})) == Done({"epoch": 3})


def test_call_waits_as_retry_after_says_then_retries() -> None:
    flow = call(GET)
    assert advance(flow, None) == GET
    limited = httpx.Response(429, headers={"Retry-After": "2"})
    assert advance(flow, limited) == Sleep(2.0)
    assert advance(flow, None) == GET
    assert advance(flow, httpx.Response(200, json=[])) == Done([])


def test_call_gives_up_rate_limited_after_its_retries() -> None:
    flow = call(GET, max_retries=3)
    limited = httpx.Response(429, json={"code": "RATE_LIMITED", "message": "slow down"})
    steps: list[Any] = [advance(flow, None)]
    with pytest.raises(ApiError) as e:
        while True:
            steps.append(advance(flow, limited if isinstance(steps[-1], Request) else None))
    assert e.value.api_code == "RATE_LIMITED"
    assert e.value.status == 429
    assert "slow down" in e.value.message
    assert sum(isinstance(s, Request) for s in steps) == 4
    assert sum(isinstance(s, Sleep) for s in steps) == 3


def test_retry_delay_reads_seconds_dates_and_falls_back_to_backoff() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_delay("7", 0) == 7.0
    assert retry_delay("Wed, 01 Jan 2025 12:00:05 GMT", 0, now) == 5.0
    assert retry_delay(None, 2) == 4.0
    assert retry_delay("soon", 1) == 2.0
    assert retry_delay("-3", 0) == 0.0
    assert retry_delay("100000", 0) == MAX_RETRY_WAIT_S


def test_server_errors_keep_their_code_message_and_status() -> None:
    e = error_of(httpx.Response(404, json={"code": "OBJECT_NOT_FOUND", "message": "gone"}))
    assert (e.api_code, e.message, e.status) == ("OBJECT_NOT_FOUND", "gone", 404)


@pytest.mark.parametrize("status", [200, 404, 502])
def test_a_non_json_answer_is_http_status(status: int) -> None:
    e = error_of(httpx.Response(status, text="<html>proxy</html>"))
    assert (e.api_code, e.status) == (f"HTTP_{status}", status)


def test_json_error_without_a_code_is_http_status() -> None:
    assert error_of(httpx.Response(500, json={"detail": "boom"})).api_code == "HTTP_500"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (httpx.ConnectError("connection refused"), "UNREACHABLE"),
        (httpx.ReadTimeout("timed out"), "TIMEOUT"),
        (httpx.ConnectTimeout("timed out"), "TIMEOUT"),
    ],
)
def test_transport_failures(error: httpx.HTTPError, code: str) -> None:
    error.request = httpx.Request("GET", "http://api.test/status")
    flow = call(GET)
    advance(flow, None)
    with pytest.raises(ApiError) as e:
        advance(flow, error)
    assert e.value.api_code == code
    assert "http://api.test/status" in e.value.message


def test_path_segments_are_quoted() -> None:
    assert path("transactions", "a/b?c") == "/transactions/a%2Fb%3Fc"


def test_page_limits_are_checked_before_sending() -> None:
    assert page_params("c1", 5) == {"limit": 5, "cursor": "c1"}
    for limit in (0, 1001):
        with pytest.raises(ApiError) as e:
            page_params(None, limit)
        assert e.value.api_code == "INVALID_REQUEST"


def test_a_page_whose_cursor_does_not_advance_is_refused() -> None:
    data = {"coins": [], "next_cursor": "same"}
    with pytest.raises(ApiError) as e:
        page_from_json(data, "coins", coin_from_json, "same")
    assert e.value.api_code == "INVALID_RESPONSE"


@pytest.mark.parametrize(
    "data",
    [[], {"coins": {}}, {"coins": [{"object_id": "0x1"}]}, {"coins": [], "next_cursor": 5}],
)
def test_a_page_of_the_wrong_shape_is_invalid_response(data: Any) -> None:
    with pytest.raises(ApiError) as e:
        page_from_json(data, "coins", coin_from_json, None)
    assert e.value.api_code == "INVALID_RESPONSE"


def test_addresses_are_parsed_in_full_only() -> None:
    full = SomaAddress.from_int(0xABC)
    assert address(full) is full
    assert address(full.to_hex()) == full
    assert address(full.hex()) == full
    with pytest.raises(ApiError) as e:
        address("0xabc")
    assert e.value.api_code == "INVALID_ADDRESS"
