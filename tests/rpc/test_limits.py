"""The HTTP API's limits (soma.rpc.limits) and error forms.

Most tests drive the ASGI application in-process (httpx.ASGITransport, or raw ASGI
messages where the order of receive and send matters) with a stub reader. What depends
on the HTTP server (refusing before the body is read, draining, requests h11 refuses,
the memory a 50 MB body costs) runs against a real `RunningApi` in a subprocess on
127.0.0.1, whose resident memory is read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import subprocess
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from soma.consensus.local_committee import free_ports
from soma.orchestrator.chain_reader import ChainReader
from soma.orchestrator.remote_reader import NoValidatorError
from soma.rpc.app import create_app
from soma.rpc.limits import (
    ECHO_CHARS,
    MESSAGE_CHARS,
    MIB,
    ApiLimits,
    LimitsMiddleware,
    RateLimiter,
    client_key,
)
from soma.rpc.server import RunningApi

ROOT = Path(__file__).resolve().parents[2]
#: Liveness bound of every network wait here (never a performance assertion).
LIVENESS_S = 60.0
FIFTY_MB = 50_000_000


class StubReader:
    """What the endpoints hit here call of a ChainReader; `failure` makes them fail."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure

    async def status(self) -> Any:
        if self.failure is not None:
            raise self.failure
        return types.SimpleNamespace(epoch=0, latest_commit=0)


def client_for(app: Any, ip: str = "127.0.0.1", raise_errors: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, client=(ip, 40000), raise_app_exceptions=raise_errors)
    return httpx.AsyncClient(transport=transport, base_url="http://api")


def api(limits: ApiLimits | None = None, reader: StubReader | None = None) -> Any:
    """The API over a stub reader, with a faucet no request here gets past validation to."""
    return create_app(cast(ChainReader, reader or StubReader()), faucet=object(), limits=limits)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == code, body
    return dict(body)


# --- raw ASGI, where the order of messages is the point --------------------------------


@dataclass
class Exchange:
    """One request through an ASGI app: what it sent, and the log of receive/send."""

    sent: list[dict[str, Any]]
    log: list[str]
    pulled: int

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


async def exchange(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: Iterable[bytes]
) -> Exchange:
    """Run one request whose body is `chunks`; a receive after the body ended (where
    uvicorn would wait for the client to leave) is logged and answered as a disconnect."""
    pending = iter(chunks)
    upcoming: bytes | None = next(pending, b"")
    result = Exchange([], [], 0)

    async def receive() -> dict[str, Any]:
        nonlocal upcoming
        chunk = upcoming
        if chunk is None:
            result.log.append("receive after the end")
            return {"type": "http.disconnect"}
        result.log.append("receive")
        upcoming = next(pending, None)
        ended = upcoming is None
        result.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": not ended}

    async def send(message: dict[str, Any]) -> None:
        result.log.append(message["type"])
        result.sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    async with asyncio.timeout(LIVENESS_S):
        await app(scope, receive, send)
    return result


SMALL = ApiLimits(max_body_bytes=1000, drain_bytes=10_000)
CHUNK = bytes(300)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read() -> None:
    for path in ("/transactions", "/nowhere"):
        headers = [(b"content-length", b"5100")]
        got = await exchange(api(SMALL), "POST", path, headers, [CHUNK] * 17)
        assert got.status == 413 and got.body["code"] == "BODY_TOO_LARGE"
        assert got.log[:2] == ["http.response.start", "http.response.body"], got.log
        assert got.headers[b"connection"] == b"close"
        assert got.headers[b"content-type"] == b"application/json"
        # Then drained to its end, and the response ended.
        assert got.pulled == 17 * len(CHUNK) and got.sent[-1].get("more_body", False) is False
        assert "receive after the end" not in got.log


async def test_a_declared_length_beyond_what_is_drained_is_not_read_at_all() -> None:
    got = await exchange(api(SMALL), "POST", "/transactions", [(b"content-length", b"20000")], [])
    assert got.status == 413 and "receive" not in got.log


@pytest.mark.parametrize(
    "headers",
    [[(b"transfer-encoding", b"chunked")], [(b"content-length", b"10")]],
    ids=["chunked", "lying-content-length"],
)
async def test_a_streamed_body_is_cut_at_the_limit_and_drained_up_to_a_bound(
    headers: list[tuple[bytes, bytes]],
) -> None:
    endless = itertools.repeat(CHUNK)
    got = await exchange(api(SMALL), "POST", "/transactions", headers, endless)
    assert got.status == 413 and got.body["code"] == "BODY_TOO_LARGE"
    # Read up to the limit, then at most `drain_bytes` more (a chunk past each).
    assert got.pulled <= SMALL.max_body_bytes + SMALL.drain_bytes + 2 * len(CHUNK)
    assert got.sent[-1].get("more_body", False) is False
    assert got.headers[b"connection"] == b"close"


async def test_a_body_that_ends_past_the_limit_is_answered_without_waiting_for_more() -> None:
    chunked = [(b"transfer-encoding", b"chunked")]
    got = await exchange(api(SMALL), "POST", "/transactions", chunked, [bytes(600), bytes(600)])
    assert got.status == 413 and got.body["code"] == "BODY_TOO_LARGE"
    assert "receive after the end" not in got.log
    assert b"connection" not in got.headers  # all of it was read: the connection can stay


async def test_a_body_at_the_limit_reaches_the_endpoint() -> None:
    body = b'{"tx_bytes": "' + b"A" * 984 + b'"}'
    assert len(body) == SMALL.max_body_bytes
    json_type = {"content-type": "application/json"}
    async with client_for(api(SMALL)) as client:
        response = await client.post("/transactions", content=body, headers=json_type)
        assert response.status_code == 400 and response.json()["code"].startswith("BCS_")
        response = await client.post("/transactions", content=body + b" ", headers=json_type)
        assert_error(response, 413, "BODY_TOO_LARGE")


async def test_a_url_over_the_limit_gets_414() -> None:
    limits = ApiLimits(max_url_bytes=1000)
    async with client_for(api(limits)) as client:
        path = "/objects/" + "a" * (1000 - len("/objects/"))
        assert_error(await client.get(path), 400, "INVALID_OBJECT_ID")
        assert_error(await client.get(path + "a"), 414, "URL_TOO_LONG")
        # The query string counts ("?" included).
        query = "q" * (1000 - len("/health?"))
        assert (await client.get("/health?" + query)).status_code == 200
        assert_error(await client.get("/health?" + query + "q"), 414, "URL_TOO_LONG")


# --- error messages -------------------------------------------------------------------


def longest_run(text: str, char: str) -> int:
    return max((len(m) for m in re.findall(f"{re.escape(char)}+", text)), default=0)


async def test_error_messages_never_echo_more_than_a_short_prefix() -> None:
    big = "Z" * 100_000
    json_type = {"content-type": "application/json"}
    async with client_for(api()) as client:
        answers = [
            (await client.post("/transactions", json={"tx_bytes": [big]}), "INVALID_REQUEST"),
            (await client.post("/faucet", json={"address": big}), "INVALID_ADDRESS"),
            (
                await client.post("/transactions", content=f'{{"{big}', headers=json_type),
                "INVALID_JSON",
            ),
            (await client.get("/addresses/" + big[:7000] + "/balance"), "INVALID_ADDRESS"),
            (await client.get("/transactions/" + big[:7000]), "INVALID_DIGEST"),
        ]
    for response, code in answers:
        message = assert_error(response, 400, code)["message"]
        assert longest_run(message, "Z") <= ECHO_CHARS, message
        assert len(message) <= MESSAGE_CHARS + 1


async def test_any_long_message_is_cut_at_the_api_boundary() -> None:
    reader = StubReader(NoValidatorError("no validator: " + "Z" * 10_000))
    async with client_for(api(reader=reader)) as client:
        message = assert_error(await client.get("/health"), 503, "NO_VALIDATOR_REACHABLE")[
            "message"
        ]
    assert len(message) == MESSAGE_CHARS + 1 and message.endswith("…")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"tx_bytes": "a" "b"}',
            "the request body is not valid JSON: expected ',' at line 1, column 18",
        ),
        (
            b'{\n  "tx_bytes": "a",\n  x}',
            "the request body is not valid JSON: expected a name in double quotes "
            "at line 3, column 3",
        ),
        (
            b'{"tx_bytes": "a"} 7',
            "the request body is not valid JSON: more data after the "
            "JSON value at line 1, column 19",
        ),
        (b"[" * 100_000, "the request body is not valid JSON: it is nested too deeply"),
    ],
)
async def test_invalid_json_says_where_in_plain_words(body: bytes, message: str) -> None:
    async with client_for(api()) as client:
        response = await client.post(
            "/transactions", content=body, headers={"content-type": "application/json"}
        )
    assert assert_error(response, 400, "INVALID_JSON")["message"] == message


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({}, "the field 'tx_bytes' in the request body is missing (a string is required)"),
        ({"tx_bytes": 5}, "the field 'tx_bytes' in the request body must be a string (got 5)"),
        ([1], "the request body must be a JSON object (got [1])"),
        ("null", "the request body must be a JSON object (got null)"),
    ],
)
async def test_a_wrong_or_missing_field_says_which_and_what_was_expected(
    request_body: Any, message: str
) -> None:
    async with client_for(api()) as client:
        content = request_body if isinstance(request_body, str) else json.dumps(request_body)
        response = await client.post(
            "/transactions", content=content, headers={"content-type": "application/json"}
        )
    assert assert_error(response, 400, "INVALID_REQUEST")["message"] == message


async def test_a_body_that_is_not_json_content_says_so() -> None:
    async with client_for(api()) as client:
        response = await client.post("/transactions", content=b'{"tx_bytes": "a"}')
        body = assert_error(response, 400, "INVALID_REQUEST")
        assert "Content-Type: application/json" in body["message"]
        body = assert_error(await client.post("/transactions"), 400, "INVALID_REQUEST")
        assert body["message"] == "the request body is missing (a JSON object is required)"


async def test_405_lists_the_methods_the_path_takes() -> None:
    async with client_for(api()) as client:
        response = await client.put("/health")
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "GET"
        response = await client.get("/transactions")
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "POST"
        assert_error(await client.get("/nowhere"), 404, "NOT_FOUND")


async def test_an_unexpected_failure_is_a_json_500() -> None:
    app = api(reader=StubReader(RuntimeError("secret detail")))
    async with client_for(app, raise_errors=False) as client:
        body = assert_error(await client.get("/health"), 500, "INTERNAL_ERROR")
    assert "secret" not in body["message"]


# --- rate limits ----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10, burst=3, max_clients=100, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(0.1)
    assert limiter.take("b") == 0  # others are not affected
    clock.now += 0.1
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    clock.now += 60
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]  # refilled, not beyond burst
    assert limiter.take("a") > 0


def test_the_client_table_is_bounded_and_forgets_idle_clients() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10, burst=5, max_clients=100, clock=clock)
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    clock.now += 0.5  # the burst refills in 0.5 s: every entry is as good as new
    limiter.take("fresh")
    assert len(limiter) == 1


def test_clients_are_keyed_by_ip_and_ipv6_by_its_64() -> None:
    def key(host: str) -> str:
        return client_key({"client": (host, 1)})

    assert key("192.0.2.7") == "192.0.2.7"
    assert key("::ffff:192.0.2.7") == "192.0.2.7"
    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9")
    assert key("2001:db8:1:2::1") != key("2001:db8:1:3::1")
    assert client_key({"client": None}) == "-"


async def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    # One request per 1000 s after a burst of 2: nothing refills during the test.
    app = api(ApiLimits(rate_per_s=0.001, burst=2))
    async with client_for(app, ip="192.0.2.1") as client, client_for(app, "192.0.2.2") as other:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404  # every request counts
        response = await client.get("/health")
        assert_error(response, 429, "RATE_LIMITED")
        assert 1 <= int(response.headers["retry-after"]) <= 1000
        assert_error(await client.post("/transactions", json={}), 429, "RATE_LIMITED")
        assert (await other.get("/health")).status_code == 200


async def test_the_middleware_retry_after_is_whole_seconds_and_at_least_one() -> None:
    clock = FakeClock()

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limits = ApiLimits(rate_per_s=100, burst=1)
    app = LimitsMiddleware(ok, limits, clock=clock)
    assert (await exchange(app, "GET", "/", [], [])).status == 204
    got = await exchange(app, "GET", "/", [], [])
    assert got.status == 429 and got.headers[b"retry-after"] == b"1"
    assert b"connection" not in got.headers  # no body: the connection stays open
    clock.now += 0.02
    assert (await exchange(app, "GET", "/", [], [])).status == 204


def test_limits_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError):
        ApiLimits(max_url_bytes=64 * 1024)
    with pytest.raises(ValueError):
        ApiLimits(rate_per_s=0)
    ApiLimits(rate_per_s=None)


# --- a real server in a subprocess ----------------------------------------------------


def serve(port: int, max_body_bytes: int) -> None:
    """The subprocess: a RunningApi over a stub reader until killed."""

    async def main() -> None:
        limits = ApiLimits(max_body_bytes=max_body_bytes)
        app = create_app(cast(ChainReader, StubReader()), limits=limits)
        api = RunningApi(app, "127.0.0.1", port)
        await api.start()
        print("READY", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self) -> dict[str, int]:
        """The server's resident memory now (VmRSS) and at its peak (VmHWM), KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}

    def reset_peak(self) -> None:
        """Start VmHWM again from the current RSS (where the kernel allows it; otherwise
        the peak since start only makes a growth check stricter)."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")


@contextlib.contextmanager
def running_server(max_body_bytes: int = MIB) -> Iterator[Server]:
    port = free_ports(1)[0]
    code = f"from tests.rpc.test_limits import serve; serve({port}, {max_body_bytes})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        yield Server(proc, port)
    finally:
        proc.kill()
        proc.wait(LIVENESS_S)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server() as s:
        yield s


def raw_request(
    server: Server, head: bytes, body: Iterable[bytes] = ()
) -> tuple[int, dict[str, str], Any]:
    """Send `head` then `body` on a fresh connection; the answer's status, headers (names
    in lower case) and JSON body, read to its Content-Length."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=LIVENESS_S) as s:
        s.sendall(head)
        for chunk in body:
            s.sendall(chunk)
        received = b""
        while b"\r\n\r\n" not in received:
            received += s.recv(65536)
        top, _, content = received.partition(b"\r\n\r\n")
        lines = top.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(content) < int(headers["content-length"]):
            content += s.recv(65536)
    return int(lines[0].split()[1]), headers, json.loads(content)


def test_a_50_mb_post_gets_413_and_costs_the_server_no_memory(server: Server) -> None:
    """The 413 for a 50 MB body, sent whole by a client that reads only afterwards
    (httpx does), to an endpoint and to no endpoint. Memory: the server's peak RSS
    during the requests against its RSS before; a control server whose limit lets the
    body through shows that the measure sees a buffered body."""
    payload = bytes(FIFTY_MB)
    server.reset_peak()
    before = server.memory_kib()["VmRSS"]
    with httpx.Client(base_url=server.base, timeout=LIVENESS_S) as client:
        for path in ("/transactions", "/nowhere"):
            response = client.post(path, content=payload)
            assert_error(response, 413, "BODY_TOO_LARGE")
            assert len(response.content) < 1024
    after = server.memory_kib()
    assert (after["VmHWM"] - before) * 1024 < 20 * MIB, (before, after)
    assert abs(after["VmRSS"] - before) * 1024 < 20 * MIB, (before, after)

    with running_server(max_body_bytes=128 * MIB) as control:
        control.reset_peak()
        control_before = control.memory_kib()["VmRSS"]
        response = httpx.post(
            control.base + "/transactions",
            content=payload,
            headers={"content-type": "application/json"},
            timeout=LIVENESS_S,
        )
        assert_error(response, 400, "INVALID_JSON")
        control_after = control.memory_kib()
    assert (control_after["VmHWM"] - control_before) * 1024 > FIFTY_MB, control_after


def test_a_chunked_body_over_the_limit_gets_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(FIFTY_MB // (64 * 1024)):
            yield bytes(64 * 1024)

    response = httpx.post(server.base + "/transactions", content=chunks(), timeout=LIVENESS_S)
    assert_error(response, 413, "BODY_TOO_LARGE")
    assert response.headers["connection"] == "close"


def test_the_server_answers_a_declared_size_without_waiting_for_the_body(server: Server) -> None:
    head = b"POST /transactions HTTP/1.1\r\nHost: a\r\nContent-Length: 50000000\r\n\r\n"
    status, headers, body = raw_request(server, head)  # no body is ever sent
    assert status == 413 and body["code"] == "BODY_TOO_LARGE"
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("url_bytes", [20_000, 100_000, 1_000_000])
def test_a_long_url_gets_a_json_414_whether_h11_or_the_app_refuses_it(
    server: Server, url_bytes: int
) -> None:
    head = b"GET /" + b"a" * url_bytes + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    status, headers, body = raw_request(server, head)
    assert status == 414 and body["code"] == "URL_TOO_LONG"
    assert headers["content-type"] == "application/json"


def test_headers_too_large_and_garbage_get_json_errors(server: Server) -> None:
    header = b"X-Big: " + b"b" * 100_000 + b"\r\n"
    head = b"GET /health HTTP/1.1\r\nHost: a\r\n"
    # In pieces: h11 refuses a head that is still incomplete past its limit.
    pieces = [header[i : i + 8192] for i in range(0, len(header), 8192)] + [b"\r\n"]
    status, _, body = raw_request(server, head, pieces)
    assert status == 431 and body["code"] == "HEADERS_TOO_LARGE"
    status, headers, body = raw_request(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and body["code"] == "INVALID_HTTP"
    assert headers["content-type"] == "application/json"
    # The server still serves.
    assert httpx.get(server.base + "/health", timeout=LIVENESS_S).status_code == 200


def test_limits_come_from_a_config_mapping_and_bad_ones_name_the_field() -> None:
    from soma.types.config import ConfigError

    limits = ApiLimits.from_config({"max_body_bytes": 4096, "rate_per_s": None}, "f.yaml")
    assert limits.max_body_bytes == 4096 and limits.rate_per_s is None
    assert ApiLimits.from_config({"rate_per_s": 2.5}, "f.yaml").rate_per_s == 2.5
    for bad, field in (
        ({"max_body": 1}, "api_limits.max_body"),
        ({"burst": "many"}, "api_limits.burst"),
        ({"max_body_bytes": -1}, "api_limits.max_body_bytes"),
        ({"max_url_bytes": 1.5}, "api_limits.max_url_bytes"),
        ({"rate_per_s": 0}, "api_limits"),
    ):
        with pytest.raises(ConfigError) as info:
            ApiLimits.from_config(bad, "f.yaml")
        assert info.value.field == field, bad
