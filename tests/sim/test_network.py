"""The simulated network and scheduler: ordering, latency, partitions, down nodes."""

from __future__ import annotations

import random

import pytest

from soma.sim.network import LatencyModel, SimNetwork
from soma.sim.scheduler import Scheduler


def test_events_run_in_time_then_scheduling_order() -> None:
    s = Scheduler()
    seen: list[str] = []
    s.at(5, lambda: seen.append("b"))
    s.at(1, lambda: seen.append("a"))
    s.at(5, lambda: seen.append("c"))
    s.run(lambda: False, 100)
    assert seen == ["a", "b", "c"]
    assert s.now_ms == 5


def test_run_stops_at_max_time() -> None:
    s = Scheduler()
    s.at(50, lambda: None)
    assert not s.run(lambda: False, 10)
    assert s.now_ms == 0


def _network(loss: float = 0.0) -> tuple[Scheduler, SimNetwork, list[tuple[int, int, object]]]:
    s = Scheduler()
    net = SimNetwork(s, random.Random(1), 4, LatencyModel(10, 20), loss)
    got: list[tuple[int, int, object]] = []
    for node in range(4):
        net.register(node, lambda sender, msg, node=node: got.append((node, sender, msg)))
    return s, net, got


def test_delivery_within_latency() -> None:
    s, net, got = _network()
    net.send(0, 1, "hi")
    s.run(lambda: bool(got), 100)
    assert got == [(1, 0, "hi")]
    assert 10 <= s.now_ms <= 20


def test_partition_drops_across_and_heal_restores() -> None:
    s, net, got = _network()
    net.partition([[0, 1], [2, 3]])
    net.send(0, 2, "x")
    net.send(0, 1, "y")
    s.run(lambda: False, 100)
    assert got == [(1, 0, "y")]
    net.heal()
    net.send(0, 2, "z")
    s.run(lambda: False, 200)
    assert (2, 0, "z") in got


def test_down_node_neither_sends_nor_receives() -> None:
    s, net, got = _network()
    net.set_up(2, False)
    net.send(0, 2, "to-down")
    net.send(2, 0, "from-down")
    s.run(lambda: False, 100)
    assert got == []


def test_message_in_flight_to_a_node_that_crashes_is_lost() -> None:
    s, net, got = _network()
    net.send(0, 3, "late")
    s.at(5, lambda: net.set_up(3, False))
    s.run(lambda: False, 100)
    assert got == []


def test_loss_drops_some_messages() -> None:
    s, net, got = _network(loss=0.5)
    for _ in range(200):
        net.send(0, 1, "m")
    s.run(lambda: False, 100)
    assert 50 < len(got) < 150


@pytest.mark.parametrize("text", ["x", "1:2:3", "5:1", "-1:3"])
def test_bad_latency_text(text: str) -> None:
    with pytest.raises(ValueError):
        LatencyModel.parse(text)
