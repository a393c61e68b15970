"""The explorer in a real headless Chromium (Debian's `chromium`, driven by Playwright)
against a `soma start` network: the DAG view shows blocks of every validator and marks
committed leaders, pausing it stops it following, a transfer made with the CLI is found
through the search box and its page shows status, fee and effects, the commit, object
and address pages render (and one for an object that does not exist), the browser logs
no console error, and every request stays on this machine. Screenshots go to
test-artifacts/explorer/ (or $SOMA_TEST_ARTIFACTS/explorer/).

No browser is downloaded: the test launches the `chromium` on PATH (`bash .ci/run`
installs Debian's package when it is missing), and fails, not skips, without it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, sync_playwright

from tests.e2e.local_network import Network, client_json

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers often have a small /dev/shm, which crashes Chromium's renderers.
    "--disable-dev-shm-usage",
]
#: The acceptance bound: blocks of every validator and a committed leader within it.
DAG_WITHIN_MS = 10_000
#: Liveness bound of the other waits (not a performance assertion).
WAIT_MS = 20_000
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

DAG_READY = """(count) => {
  const blocks = [...document.querySelectorAll('#dag g.block[data-author][data-round]')];
  const authors = new Set(blocks.map((b) => b.dataset.author));
  const committed = document.querySelector('#dag g.block[data-leader-status^="committed"]');
  return authors.size >= count && committed !== null;
}"""


def _artifacts() -> Path:
    base = os.environ.get("SOMA_TEST_ARTIFACTS")
    path = (Path(base) if base else ROOT / "test-artifacts") / "explorer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "the explorer test drives Debian's chromium, which is not on PATH: install it "
            "with `apt-get install -y chromium` (bash .ci/run does when it is missing)"
        )
    return found


def _local(url: str) -> bool:
    """Whether the browser's request `url` stays on this machine (or in the page)."""
    parts = urlsplit(url)
    return parts.scheme == "data" or parts.hostname in LOCAL_HOSTS


def test_explorer_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    artifacts = _artifacts()
    directory = tmp_path / "net"
    network = Network(directory)
    console: list[ConsoleMessage] = []
    page_errors: list[str] = []
    requests: list[str] = []
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            try:
                page = context.new_page()
                page.on("console", lambda m: console.append(m))
                page.on("pageerror", lambda e: page_errors.append(str(e)))
                context.on("request", lambda r: requests.append(r.url))

                # The overview: the DAG of all four validators with a committed leader.
                started = time.monotonic()
                page.goto(f"{network.api}/explorer")
                page.wait_for_function(DAG_READY, arg=4, timeout=DAG_WITHIN_MS)
                assert time.monotonic() - started < DAG_WITHIN_MS / 1000
                page.wait_for_selector("#latest-commits tbody tr", timeout=WAIT_MS)
                page.wait_for_selector("#tps-chart svg.chart", timeout=WAIT_MS)
                page.wait_for_selector("#committee-table tbody tr", timeout=WAIT_MS)
                page.screenshot(path=str(artifacts / "overview.png"), full_page=True)

                # Paused, the DAG view stops following new rounds; resumed, it follows.
                dag = page.locator("#dag svg.dag")
                page.click("#dag-pause")
                assert page.get_attribute("#dag-pause", "data-paused") == "true"
                paused_at = dag.get_attribute("data-highest-round")
                page.wait_for_timeout(1500)
                assert dag.get_attribute("data-highest-round") == paused_at
                page.click("#dag-pause")
                page.wait_for_function(
                    "(r) => Number(document.querySelector('#dag svg.dag')"
                    ".dataset.highestRound) > r",
                    arg=int(paused_at or 0),
                    timeout=WAIT_MS,
                )

                # A transfer made with the CLI, found through the search box.
                sent = client_json(
                    directory, "transfer", "--to", "0x" + "cd" * 32, "--amount", "10"
                )
                digest = sent["digest"]
                page.fill("#search-input", digest)
                page.press("#search-input", "Enter")
                page.wait_for_selector("#tx-status [data-status]", timeout=WAIT_MS)
                assert page.url.endswith(f"#/tx/{digest}")
                assert page.text_content("#tx-digest") == digest
                assert page.get_attribute("#tx-status [data-status]", "data-status") == "success"
                assert page.text_content("#tx-fee") == f"{sent['fee']:,}"
                effects = page.text_content("#tx-effects") or ""
                assert "Mutated" in effects and "Created" in effects
                assert "certified" in (page.text_content("#tx-certificate") or "")
                page.screenshot(path=str(artifacts / "transaction.png"), full_page=True)

                # The pages it links to: the sender, an input object; and a commit.
                page.click("#tx-sender a")
                page.wait_for_selector("#address-balance", timeout=WAIT_MS)
                page.go_back()
                page.wait_for_selector("#tx-inputs a", timeout=WAIT_MS)
                page.click("#tx-inputs a")
                page.wait_for_selector("#object-owner", timeout=WAIT_MS)
                assert page.text_content("#object-previous")
                page.screenshot(path=str(artifacts / "object.png"), full_page=True)
                page.evaluate("() => { location.hash = '#/commit/1'; }")
                page.wait_for_selector("#commit-leader", timeout=WAIT_MS)
                page.screenshot(path=str(artifacts / "commit.png"), full_page=True)
                # Something the node does not hold is a message, not a failed request.
                page.evaluate("() => { location.hash = '#/object/0x' + 'ee'.repeat(32); }")
                page.wait_for_selector("#page-missing", timeout=WAIT_MS)
            finally:
                context.close()
    finally:
        network.stop()

    errors = [f"{m.type}: {m.text} ({m.location})" for m in console if m.type == "error"]
    assert not errors, errors
    assert not page_errors, page_errors
    outside = [
        u
        for u in requests
        if urlsplit(u).scheme != "data" and urlsplit(u).hostname not in LOCAL_HOSTS
    ]
    assert not outside, outside
    assert any(urlsplit(u).path == "/dag" for u in requests)
