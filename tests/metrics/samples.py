"""Reading one sample of the process's metrics (0 when the series does not exist yet)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from soma.metrics.registration import EVERY, register

register(EVERY)


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value
