"""What the network dashboard shows, without I/O: each node's status parsed from its
Prometheus metrics, transactions per second from two scrapes, and the dashboard as
table rows, a plain status line or a JSON object.

Kept apart from the scraping and the terminal (`soma.cli.dashboard`) so that every
rule here (a node is up when its scrape answered; a metric it does not export yet
shows as `-`; a counter that went back means the node restarted, not a negative rate)
is tested in-process from metrics text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from soma.node.node_list import ListedNode

ROUND = "soma_consensus_round"
LAST_COMMIT = "soma_authority_highest_executed_commit"
EPOCH = "soma_authority_epoch"
EXECUTED = "soma_authority_transactions_executed_total"

COLUMNS = ("node", "role", "up", "round", "last commit", "epoch")
FULLNODE_ROLE = "fullnode"
MISSING = "-"


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """One node as one scrape saw it; None where it did not say (down, or a metric it
    does not export). `up` is None for a node that serves no metrics (its config is
    older than metrics): nothing says whether it is up."""

    name: str
    role: str
    up: bool | None
    round: int | None = None
    last_commit: int | None = None
    epoch: int | None = None
    #: Its count of user transactions executed (a counter: the TPS comes from two).
    user_transactions: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "up": self.up,
            "round": self.round,
            "last_commit": self.last_commit,
            "epoch": self.epoch,
        }


def parse_status(node: ListedNode, text: str | None) -> NodeStatus:
    """A node's status from its metrics text (None: the scrape did not answer)."""
    if text is None:
        return NodeStatus(node.name, node.role, up=None if node.metrics_url is None else False)
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == EXECUTED:
                    # No user series yet, beside a system one: none executed so far.
                    values.setdefault(EXECUTED, 0.0)
                    if sample.labels.get("kind") == "user":
                        values[EXECUTED] = sample.value
                elif sample.name in (ROUND, LAST_COMMIT, EPOCH) and not sample.labels:
                    values[sample.name] = sample.value
    except (ValueError, TypeError, IndexError):
        pass  # it answered (it is up), with something else than metrics text
    return NodeStatus(
        node.name,
        node.role,
        up=True,
        # A fullnode runs no consensus: its round gauge is only ever the default 0.
        round=None if node.role == FULLNODE_ROLE else _count(values.get(ROUND)),
        last_commit=_count(values.get(LAST_COMMIT)),
        epoch=_count(values.get(EPOCH)),
        user_transactions=values.get(EXECUTED),
    )


def _count(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value)


@dataclasses.dataclass(frozen=True)
class Sample:
    """Every node's status at one moment (`at`: monotonic seconds)."""

    at: float
    nodes: tuple[NodeStatus, ...]


def transactions_per_second(before: Sample | None, after: Sample) -> float | None:
    """User transactions a second between two samples: the highest rate any node
    executed at (every node executes every transaction; the highest is the one that
    kept up). None without two readings of one node's counter; a counter that went
    back (the node restarted) gives no rate."""
    if before is None or after.at <= before.at:
        return None
    earlier = {n.name: n.user_transactions for n in before.nodes}
    rates = []
    for node in after.nodes:
        then = earlier.get(node.name)
        if then is None or node.user_transactions is None or node.user_transactions < then:
            continue
        rates.append((node.user_transactions - then) / (after.at - before.at))
    return max(rates) if rates else None


@dataclasses.dataclass(frozen=True)
class View:
    """What one refresh of the dashboard shows."""

    sample: Sample
    tps: float | None
    api_url: str | None
    logs: str | None

    @property
    def up(self) -> int:
        return sum(1 for n in self.sample.nodes if n.up is True)

    @property
    def epoch(self) -> int | None:
        return _highest(n.epoch for n in self.sample.nodes)

    @property
    def last_commit(self) -> int | None:
        return _highest(n.last_commit for n in self.sample.nodes)


def _highest(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _text(value: int | float | None) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def rows(view: View) -> list[tuple[str, ...]]:
    """One row a node, under `COLUMNS`."""
    return [
        (
            printable(n.name),
            printable(n.role),
            MISSING if n.up is None else "up" if n.up else "down",
            _text(n.round),
            _text(n.last_commit),
            _text(n.epoch),
        )
        for n in view.sample.nodes
    ]


def footer(view: View) -> str:
    return (
        f"tps {_text(view.tps)}   API {printable(view.api_url or MISSING)}   "
        f"logs {printable(view.logs or MISSING)}"
    )


def status_line(view: View) -> str:
    """The network in one plain line: `status epoch=1 commit=120 tps=3.2 up=5/5`."""
    return (
        f"status epoch={_text(view.epoch)} commit={_text(view.last_commit)} "
        f"tps={_text(view.tps)} up={view.up}/{len(view.sample.nodes)}"
    )


def view_json(view: View) -> dict[str, Any]:
    return {
        "epoch": view.epoch,
        "last_commit": view.last_commit,
        "tps": None if view.tps is None else round(view.tps, 3),
        "up": view.up,
        "api_url": view.api_url,
        "logs": view.logs,
        "nodes": [n.to_json() for n in view.sample.nodes],
    }


def metrics_lines(nodes: Iterable[ListedNode]) -> list[str]:
    """Where each node serves its metrics: `metrics validator-0 http://...` (`-` for
    a node made before nodes served metrics)."""
    return [f"metrics {printable(n.name)} {printable(n.metrics_url or MISSING)}" for n in nodes]


def printable(text: str) -> str:
    """`text` without control characters (a plain line never moves a terminal's cursor)."""
    return "".join(c if c.isprintable() else "?" for c in text)
