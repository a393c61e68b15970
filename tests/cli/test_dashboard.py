"""The network dashboard: statuses from metrics text, TPS from two scrapes, `-` for what
a node does not say, plain lines without a control code, scraping through httpx, and
`soma client status --watch` on a network that is not running."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from rich.console import Console

from soma.cli.dashboard import Watcher, panel, print_lines
from soma.cli.dashboard_model import (
    NodeStatus,
    Sample,
    View,
    footer,
    metrics_lines,
    parse_status,
    rows,
    status_line,
    transactions_per_second,
    view_json,
)
from soma.cli.main import app
from soma.node.node_list import ListedNode

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def listed(name: str, role: str = "validator", port: int | None = 9000) -> ListedNode:
    url = None if port is None else f"http://127.0.0.1:{port}/metrics"
    return ListedNode(name, role, Path(f"{name}.yaml"), url, None)


def metrics(round: int | None, commit: int, epoch: int, user: float | None) -> str:
    out = [
        "# HELP soma_authority_epoch The epoch this node executes.",
        "# TYPE soma_authority_epoch gauge",
        f"soma_authority_epoch {epoch}.0",
        "# TYPE soma_authority_highest_executed_commit gauge",
        f"soma_authority_highest_executed_commit {commit}.0",
        "# TYPE soma_authority_transactions_executed_total counter",
        'soma_authority_transactions_executed_total{kind="system"} 40.0',
        "# TYPE process_cpu_seconds_total counter",
        "process_cpu_seconds_total 1.5",
    ]
    if user is not None:
        out.append(f'soma_authority_transactions_executed_total{{kind="user"}} {user}')
    if round is not None:
        out += ["# TYPE soma_consensus_round gauge", f"soma_consensus_round {round}.0"]
    return "\n".join(out) + "\n"


def test_metrics_text_becomes_a_status() -> None:
    status = parse_status(listed("validator-0"), metrics(812, 130, 2, 55.0))
    assert status == NodeStatus("validator-0", "validator", True, 812, 130, 2, 55.0)
    # No user transaction yet: the counter has its system series only.
    # A fullnode's round gauge is the default 0 of a consensus it does not run.
    assert parse_status(listed("fullnode", "fullnode"), metrics(0, 9, 0, None)) == NodeStatus(
        "fullnode", "fullnode", True, None, 9, 0, 0.0
    )


def test_what_a_node_does_not_say_is_a_dash() -> None:
    down = parse_status(listed("validator-1"), None)
    before_metrics = parse_status(listed("validator-2", port=None), None)
    older = parse_status(listed("validator-3"), "# nothing soma exports yet\nup 1\n")
    garbage = parse_status(listed("fullnode", "fullnode"), "{not metrics text")
    assert (down.up, before_metrics.up, older.up, garbage.up) == (False, None, True, True)
    view = View(Sample(1.0, (down, before_metrics, older, garbage)), None, None, None)
    assert rows(view) == [
        ("validator-1", "validator", "down", "-", "-", "-"),
        ("validator-2", "validator", "-", "-", "-", "-"),
        ("validator-3", "validator", "up", "-", "-", "-"),
        ("fullnode", "fullnode", "up", "-", "-", "-"),
    ]
    assert status_line(view) == "status epoch=- commit=- tps=- up=2/4"
    assert footer(view) == "tps -   API -   logs -"


def sample(at: float, *users: float | None) -> Sample:
    return Sample(
        at,
        tuple(
            NodeStatus(f"n{i}", "validator", u is not None, 1, 1, 0, u) for i, u in enumerate(users)
        ),
    )


def test_tps_is_the_highest_rate_between_two_samples() -> None:
    assert transactions_per_second(sample(10.0, 100.0, 90.0), sample(12.0, 110.0, 110.0)) == 10.0
    assert transactions_per_second(None, sample(12.0, 110.0)) is None
    # One node restarted (its counter went back), another went down: the third counts.
    assert transactions_per_second(
        sample(0.0, 500.0, 100.0, 100.0), sample(4.0, 3.0, None, 112.0)
    ) == pytest.approx(3.0)
    assert transactions_per_second(sample(0.0, 500.0), sample(4.0, 3.0)) is None
    assert transactions_per_second(sample(5.0, 1.0), sample(5.0, 2.0)) is None


def network_view() -> View:
    nodes = (
        parse_status(listed("validator-0"), metrics(812, 130, 2, 55.0)),
        parse_status(listed("validator-1"), metrics(810, 128, 2, 53.0)),
        parse_status(listed("fullnode", "fullnode"), metrics(None, 129, 2, 54.0)),
        parse_status(listed("validator-2"), None),
    )
    return View(Sample(3.0, nodes), 3.25, "http://127.0.0.1:9000", "/net/logs")


def test_plain_renderings_have_no_control_codes() -> None:
    view = network_view()
    assert status_line(view) == "status epoch=2 commit=130 tps=3.2 up=3/4"
    lines = [
        status_line(view),
        footer(view),
        *metrics_lines([listed("validator-0"), listed("odd\x1b[2Jname\r", port=None)]),
    ]
    assert lines[-1] == "metrics odd?[2Jname? -"
    assert not any(CONTROL.search(line) for line in lines)
    out = io.StringIO()

    class Once(Watcher):
        async def view(self) -> View:
            return view

    async def run() -> None:
        watcher = Once([], None, None)
        task = asyncio.ensure_future(print_lines(watcher, 0.01, status_line, out=out))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.aclose()

    asyncio.run(run())
    text = out.getvalue()
    assert text.count("status epoch=2") >= 2
    assert "\x1b" not in text and "\r" not in text
    as_json = view_json(view)
    assert json.loads(json.dumps(as_json))["nodes"][3] == {
        "name": "validator-2",
        "role": "validator",
        "up": False,
        "round": None,
        "last_commit": None,
        "epoch": None,
    }
    assert (as_json["epoch"], as_json["last_commit"], as_json["tps"]) == (2, 130, 3.25)


def test_the_panel_shows_every_node_and_the_footer() -> None:
    console = Console(file=io.StringIO(), width=100, force_terminal=False, no_color=True)
    console.print(panel(network_view()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for expected in ("validator-0", "812", "fullnode", "down", "last commit", "tps 3.2"):
        assert expected in text
    assert "http://127.0.0.1:9000" in text and "/net/logs" in text


def test_the_watcher_scrapes_every_node_and_counts_what_answers() -> None:
    answers = {9000: metrics(5, 3, 1, 10.0), 9001: metrics(6, 4, 1, 12.0)}
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        port = request.url.port
        if port == 9002:
            raise httpx.ConnectError("refused")
        calls["n"] += 1
        assert port is not None
        return httpx.Response(200, text=answers[port])

    nodes = [listed("validator-0"), listed("validator-1", port=9001), listed("v2", port=9002)]

    async def run() -> tuple[View, View]:
        watcher = Watcher(nodes, "http://api", Path("/logs"), httpx.MockTransport(handler))
        try:
            first = await watcher.view()
            answers[9001] = metrics(7, 9, 1, 30.0)
            return first, await watcher.view()
        finally:
            await watcher.aclose()

    first, second = asyncio.run(run())
    assert calls["n"] == 4
    assert [n.up for n in first.sample.nodes] == [True, True, False]
    assert first.tps is None and second.tps is not None and second.tps > 0
    assert second.last_commit == 9 and second.logs == "/logs"


def test_watch_on_a_stopped_network_is_an_error(tmp_path: Path) -> None:
    from soma.node.local_network import create_local_network

    root = tmp_path / "net"
    create_local_network(root, validators=1)
    result = CliRunner().invoke(app, ["client", "--dir", str(root), "status", "--watch"])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: the network in {root} is not running; start it with `soma start --dir {root}`\n"
    )


def test_status_lines_never_wait_for_a_reader_that_stopped_reading() -> None:
    """`soma start`'s event loop supervises the nodes: a full pipe on its standard output
    (a reader that stopped reading) must stall the writer thread alone."""
    import os
    import time

    from soma.cli.dashboard import LineWriter

    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    try:
        writer = LineWriter(stream)
        line = "status epoch=0 commit=1 tps=0.0 up=5/5\n" * 100
        started = time.monotonic()
        for _ in range(200):  # 800 kB: far more than a pipe holds
            writer.write(line)
        assert time.monotonic() - started < 1.0
        assert writer.dropped > 0
    finally:
        os.close(read_end)  # the writer thread's next write fails: it ends
