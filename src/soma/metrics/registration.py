"""Which metrics a node serves: those of the components its role runs.

The metrics are created unregistered and a node registers, at start, the modules of
its role: a fullnode runs no consensus, so it serves no consensus metrics (a round
stuck at 0 would read as a consensus that stalled). Registering twice is a no-op, so
tests (and a process that runs both roles) may register freely.
"""

from __future__ import annotations

from types import ModuleType

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from soma.metrics import api, authority, consensus, sync

#: A validator runs consensus, execution, the validator service and P2P (and state sync
#: when it catches up or follows the chain outside the committee).
VALIDATOR = (consensus, authority, sync, api)
#: A fullnode follows the chain by state sync, executes it and serves the HTTP API.
FULLNODE = (authority, sync, api)
EVERY = VALIDATOR

_registered: set[int] = set()


def metrics_of(module: ModuleType) -> list[MetricWrapperBase]:
    return [v for v in vars(module).values() if isinstance(v, MetricWrapperBase)]


def register(modules: tuple[ModuleType, ...], registry: CollectorRegistry = REGISTRY) -> None:
    for module in modules:
        for metric in metrics_of(module):
            if id(metric) not in _registered:
                registry.register(metric)
                _registered.add(id(metric))
