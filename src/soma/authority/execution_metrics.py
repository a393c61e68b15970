"""The authority's work as metrics (`soma.metrics.authority`): one call per executed
transaction, so execution itself stays free of them."""

from __future__ import annotations

from soma.metrics import authority as metrics
from soma.types.effects import ExecutionFailure, TransactionEffects
from soma.types.transaction import SignedTransaction

# Children looked up once: this runs for every transaction.
_EXECUTED_USER = metrics.EXECUTED.labels("user")
_EXECUTED_SYSTEM = metrics.EXECUTED.labels("system")


def record_execution(tx: SignedTransaction, effects: TransactionEffects, seconds: float) -> None:
    (_EXECUTED_SYSTEM if tx.data.kind.is_system() else _EXECUTED_USER).inc()
    metrics.EXECUTION_LATENCY.observe(seconds)
    if isinstance(effects.status, ExecutionFailure):
        metrics.FAILED.labels(effects.status.error.code).inc()
