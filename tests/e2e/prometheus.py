"""Scraping every node of a `soma start` network, as `soma client nodes` lists it: the
text must parse as Prometheus text, each family with help text."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.local_network import client_json


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


def scrape_network(directory: Path) -> dict[str, dict[str, float]]:
    """Every node `soma client nodes` lists (validators in order, then the fullnode, each
    with a metrics URL on loopback), scraped: node name -> `scrape`."""
    nodes = client_json(directory, "nodes")
    assert [n["name"] for n in nodes] == [f"validator-{i}" for i in range(4)] + ["fullnode"]
    assert all(n["metrics_url"].startswith("http://127.0.0.1:") for n in nodes)
    assert [n["role"] for n in nodes] == ["validator"] * 4 + ["fullnode"]
    return {n["name"]: scrape(n["metrics_url"]) for n in nodes}


def assert_metrics_moved(
    first: dict[str, dict[str, float]], second: dict[str, dict[str, float]]
) -> None:
    """Between two `scrape_network`s with transactions in between: every node's metrics
    for rounds, commits, executed transactions and requests served grew."""
    for name, before_all in first.items():
        role = "fullnode" if name == "fullnode" else "validator"
        for metric in MOVING[role]:
            before, after = before_all.get(metric), second[name].get(metric)
            assert before is not None and after is not None, f"{name}: no {metric}"
            assert after > before, f"{name}: {metric} stayed at {before}"
