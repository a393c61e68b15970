"""Latency percentiles over weighted samples (a batch's latency counts once per
transaction in it)."""

from __future__ import annotations


class LatencyRecorder:
    def __init__(self) -> None:
        self._samples: list[tuple[float, int]] = []

    def add(self, latency_ms: float, weight: int = 1) -> None:
        self._samples.append((latency_ms, weight))

    @property
    def count(self) -> int:
        return sum(w for _, w in self._samples)

    def percentile(self, p: float) -> float | None:
        """The smallest latency with at least p% of the weight at or below it."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        total = sum(w for _, w in ordered)
        target = p / 100 * total
        seen = 0
        for latency, weight in ordered:
            seen += weight
            if seen >= target:
                return round(latency, 1)
        return round(ordered[-1][0], 1)

    def percentiles(self) -> dict[str, float | None]:
        return {f"p{p}": self.percentile(p) for p in (50, 90, 99)}
