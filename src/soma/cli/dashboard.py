"""The network dashboard of `soma start` and `soma client status --watch`: every node's
metrics scraped about once a second, shown as a live panel on a terminal, or as plain
lines when standard output is a file or a pipe.

Each node serves Prometheus metrics (`soma.metrics`) on a thread of its own, so a
scrape answers even when a node's event loop is busy; the nodes are found from the
network directory's configs (`soma.node.node_list`). Every scrape has a short timeout
and they run concurrently, on the caller's event loop: under `soma start` the same
loop supervises the nodes, so nothing here may block it.

The plain output never carries a control code (no colour, no cursor movement, no
carriage return): rich is used on a terminal only, and logs written meanwhile go above
the panel (rich redirects stderr while the panel is live; `soma.utils.log_setup` writes
to the stderr of the moment).
"""

from __future__ import annotations

import asyncio
import collections
import json
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import httpx
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from soma.cli.dashboard_model import (
    COLUMNS,
    Sample,
    View,
    footer,
    parse_status,
    rows,
    status_line,
    transactions_per_second,
    view_json,
)
from soma.node.layout import LOGS_DIR
from soma.node.node_list import ListedNode, list_nodes
from soma.types.error import SomaError

REFRESH_S = 1.0
#: `soma start`'s plain output: one status line this often (it is a log, not a screen).
PLAIN_EVERY_S = 10.0
SCRAPE_TIMEOUT_S = 0.5
#: The TPS shown is the rate over this many refreshes (one is too noisy to read).
TPS_WINDOW = 5


class NetworkNotRunning(SomaError):
    """No node of the network answers and nothing holds its directory."""

    code = "UNREACHABLE"


class Watcher:
    """Scrapes a network's nodes; each `view()` is one refresh of the dashboard."""

    def __init__(
        self,
        nodes: list[ListedNode],
        api_url: str | None,
        logs: Path | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport` replaces the network (tests)."""
        self.nodes = nodes
        self.api_url = api_url
        self.logs = None if logs is None else str(logs)
        # The nodes' own addresses: no proxy from the environment may stand in between.
        self._client = httpx.AsyncClient(
            timeout=SCRAPE_TIMEOUT_S, trust_env=False, transport=transport
        )
        self._samples: collections.deque[Sample] = collections.deque(maxlen=TPS_WINDOW + 1)

    async def view(self) -> View:
        texts = await asyncio.gather(*(self._scrape(n.metrics_url) for n in self.nodes))
        sample = Sample(
            time.monotonic(),
            tuple(parse_status(node, text) for node, text in zip(self.nodes, texts, strict=True)),
        )
        self._samples.append(sample)
        tps = transactions_per_second(self._samples[0], sample)
        return View(sample, tps, self.api_url, self.logs)

    async def _scrape(self, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            response = await self._client.get(url)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    async def aclose(self) -> None:
        await self._client.aclose()


def panel(view: View) -> RenderableType:
    """The live panel: a row a node, then TPS, the API and the logs."""
    table = Table(*COLUMNS, box=box.SIMPLE_HEAD, expand=False)
    for row, node in zip(rows(view), view.sample.nodes, strict=True):
        style = "" if node.up is None else "green" if node.up else "red"
        table.add_row(*row[:2], Text(row[2], style=style), *row[3:])
    return Panel(
        Group(table, Text(footer(view))), title="soma network", title_align="left", expand=False
    )


async def show_live(
    watcher: Watcher, first: View | None = None, console: Console | None = None
) -> None:
    """The live panel, from `first` (else a fresh view), refreshed every `REFRESH_S`,
    until cancelled."""
    console = console or Console()
    # Log lines on the same terminal go above the panel; to a file, they stay there.
    above = sys.stderr.isatty()
    with Live(console=console, auto_refresh=False, redirect_stderr=above) as live:
        view = first or await watcher.view()
        while True:
            live.update(panel(view), refresh=True)
            await asyncio.sleep(REFRESH_S)
            view = await watcher.view()


class LineWriter:
    """Writes lines to a stream from a thread of its own, so a writer never waits: a
    reader that stopped reading stalls that thread alone (a daemon: it never holds up
    the exit). One line waits while another is written; more are dropped (counted)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._queue: queue.Queue[str] = queue.Queue(maxsize=1)
        self.dropped = 0
        threading.Thread(target=self._run, name="status-lines", daemon=True).start()

    def write(self, text: str) -> None:
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            text = self._queue.get()
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                return  # the stream is gone (closed pipe): nothing more to say there


async def print_lines(
    watcher: Watcher,
    every_s: float,
    line: Callable[[View], str],
    first: View | None = None,
    print_first: bool = True,
    out: TextIO | None = None,
    write: Callable[[str], None] | None = None,
) -> None:
    """One plain line every `every_s`, flushed, from `first` (else a fresh view),
    until cancelled; without `print_first` the first line waits `every_s` (its TPS
    then covers the whole interval). `write` takes each line instead of `out`."""
    view = first or await watcher.view()
    while True:
        if print_first:
            if write is not None:
                write(line(view) + "\n")
            else:
                stream = out or sys.stdout
                stream.write(line(view) + "\n")
                stream.flush()
        print_first = True
        await asyncio.sleep(every_s)
        view = await watcher.view()


async def follow_started_network(root: Path, api_url: str, on_terminal: bool) -> None:
    """`soma start`'s dashboard, once the network is ready: the live panel on a
    terminal, else a status line every `PLAIN_EVERY_S`."""
    watcher = Watcher(list_nodes(root), api_url, root / LOGS_DIR)
    try:
        if on_terminal:
            await show_live(watcher)
        else:
            # Off the event loop: it supervises the nodes, and a reader of our output
            # that stopped reading must not stall it once the pipe is full.
            writer = LineWriter(sys.stdout)
            await print_lines(
                watcher, PLAIN_EVERY_S, status_line, print_first=False, write=writer.write
            )
    finally:
        await watcher.aclose()


def watch_network(root: Path, api_url: str | None, as_json: bool) -> None:
    """`soma client status --watch` until Ctrl-C: the live panel on a terminal, else a
    status line (`--json`: an object) a refresh. `NetworkNotRunning` when no node
    answers the first scrape and nothing runs the network."""

    async def run() -> None:
        watcher = Watcher(list_nodes(root), api_url, root / LOGS_DIR)
        try:
            first = await watcher.view()
            if first.up == 0:
                from soma.node.dir_lock import lock_holder

                if lock_holder(root) is None:
                    raise NetworkNotRunning(f"no node of the network in {root} answers")
            if as_json:
                await print_lines(watcher, REFRESH_S, lambda v: json.dumps(view_json(v)), first)
            elif sys.stdout.isatty():
                await show_live(watcher, first)
            else:
                await print_lines(watcher, REFRESH_S, status_line, first)
        finally:
            await watcher.aclose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return
