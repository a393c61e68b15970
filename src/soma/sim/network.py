"""A simulated network between validators: per-link latency drawn from a distribution,
message loss, partitions that heal, and nodes that are down.

Messages are delivered by calling the destination's handler at the arrival time. A
message to a node that is down, across a partition, or lost, is silently dropped, as a
real network would (the protocol's own retries and synchronization must recover).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from soma.sim.scheduler import Scheduler


@dataclass(frozen=True)
class LatencyModel:
    """Uniform latency between `low_ms` and `high_ms` inclusive on every link."""

    low_ms: int = 10
    high_ms: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.low_ms <= self.high_ms:
            raise ValueError(f"latency range {self.low_ms}:{self.high_ms} is not LO <= HI")

    @classmethod
    def parse(cls, text: str) -> LatencyModel:
        """`LO:HI` in milliseconds (or a single number for a fixed latency)."""
        parts = text.split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"latency {text!r} is not LO:HI in milliseconds") from None
        if len(values) == 1:
            return cls(values[0], values[0])
        if len(values) != 2:
            raise ValueError(f"latency {text!r} is not LO:HI in milliseconds")
        return cls(values[0], values[1])

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low_ms, self.high_ms)


Handler = Callable[[int, object], None]


class SimNetwork:
    """Delivers messages between node indices 0..n-1 on the scheduler's clock."""

    def __init__(
        self,
        scheduler: Scheduler,
        rng: random.Random,
        size: int,
        latency: LatencyModel,
        loss: float = 0.0,
    ) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss {loss} is not in [0, 1)")
        self._scheduler = scheduler
        self._rng = rng
        self._size = size
        self._latency = latency
        self._loss = loss
        self._handlers: dict[int, Handler] = {}
        self._up = [True] * size
        self._group = [0] * size  # nodes in different groups cannot talk
        self.sent = 0
        self.dropped = 0

    def register(self, node: int, handler: Handler) -> None:
        """`handler(sender, message)` receives what is delivered to `node`."""
        self._handlers[node] = handler

    def set_up(self, node: int, up: bool) -> None:
        self._up[node] = up

    def is_up(self, node: int) -> bool:
        return self._up[node]

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Split the nodes into `groups`; nodes not listed join the first group."""
        self._group = [0] * self._size
        for g, members in enumerate(groups):
            for node in members:
                self._group[node] = g

    def heal(self) -> None:
        self._group = [0] * self._size

    def connected(self, a: int, b: int) -> bool:
        return self._group[a] == self._group[b]

    def send(self, sender: int, receiver: int, message: object) -> None:
        self.sent += 1
        # Randomness is drawn for every send, delivered or not, so that whether one link
        # is cut never changes the latencies drawn for the others.
        delay = self._latency.sample(self._rng)
        lost = self._loss > 0 and self._rng.random() < self._loss
        if lost or not self._up[sender] or not self.connected(sender, receiver):
            self.dropped += 1
            return

        def deliver() -> None:
            # Checked again on arrival: the receiver may have crashed, or a partition
            # started, while the message was in flight.
            handler = self._handlers.get(receiver)
            if handler is None or not self._up[receiver] or not self.connected(sender, receiver):
                self.dropped += 1
                return
            handler(sender, message)

        self._scheduler.after(delay, deliver)
