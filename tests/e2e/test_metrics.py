"""Every node of a `soma start` network, as `soma client nodes` lists it, serves
Prometheus text whose consensus, execution and API metrics move under load."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.local_network import Network

#: Between the two scrapes (the acceptance check waits 10 s; a short load does here).
WAIT_S = 4.0


def _client(directory: Path, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "soma", "client", "--json", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def scrape(url: str) -> dict[str, float]:
    """Each `soma_` sample name, summed over its labels (the text must parse)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no help text"
        # A labelled counter with no series yet is listed (HELP, TYPE) and counts 0.
        if family.type == "counter" and family.name.startswith("soma_"):
            totals.setdefault(f"{family.name}_total", 0.0)
        for sample in family.samples:
            if sample.name.startswith("soma_"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    # prometheus-client's process metrics come along.
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text
    return totals


#: Per role: the metrics for rounds, commits, executed transactions and API requests.
MOVING = {
    "validator": (
        "soma_consensus_round",
        "soma_consensus_commit_index",
        "soma_consensus_commits_total",
        "soma_authority_highest_executed_commit",
        "soma_authority_transactions_executed_total",
        "soma_consensus_blocks_proposed_total",
        "soma_api_requests_total",
    ),
    "fullnode": (
        "soma_authority_commit_round",
        "soma_authority_highest_executed_commit",
        "soma_state_sync_highest_synced_commit",
        "soma_authority_transactions_executed_total",
        "soma_api_requests_total",
    ),
}


def test_every_node_serves_metrics_that_move_under_load(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    network = Network(directory)
    try:
        nodes = _client(directory, "nodes")
        assert [n["name"] for n in nodes] == [f"validator-{i}" for i in range(4)] + ["fullnode"]
        assert all(n["metrics_url"].startswith("http://127.0.0.1:") for n in nodes)
        assert [n["api_url"] for n in nodes if n["api_url"]] == [network.api]
        first = {n["name"]: scrape(n["metrics_url"]) for n in nodes}
        started = time.monotonic()
        recipient = network.funded[1]
        for _ in range(6):
            result = _client(directory, "transfer", "--to", recipient, "--amount", "3")
            assert result["status"] == "success", result
        time.sleep(max(0.0, WAIT_S - (time.monotonic() - started)))
        second = {n["name"]: scrape(n["metrics_url"]) for n in nodes}
        for node in nodes:
            name, role = node["name"], node["role"]
            for metric in MOVING[role]:
                before, after = first[name].get(metric), second[name].get(metric)
                assert before is not None and after is not None, f"{name}: no {metric}"
                assert after > before, f"{name}: {metric} stayed at {before}"
        # The fullnode served the transfers through its HTTP API and executed them.
        fullnode = second["fullnode"]
        assert fullnode["soma_api_request_duration_seconds_count"] >= 6
        assert fullnode["soma_state_sync_lag_commits"] >= 0
    finally:
        network.stop()
